"""The add-on's side of a calibrated multi-camera run: a result's further cameras become Blender
cameras that reproduce the engine's projection through each calibrated camera, with their own videos
behind them (clips shifted by the sync offsets), replaced on re-import; the panel's Cameras box and
the Run operator hand the further videos, calibration and sync offsets to the engine; headless.py
passes them through.

The multi-camera result is a real single-camera result (conftest's cam01_run) with the views_* keys of
the engine's contract added: camera 1 three metres to the subject's side, camera 2 behind and above it,
rolled, with a landscape image and an off-centre principal point, and a video that no longer exists.
"""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import bpy
import numpy as np
import pytest
from conftest import assert_drawn_names_exist, camera_pixels, demo_video, drawn, load_headless

headless = load_headless()
pkg = headless.load_package()
build = importlib.import_module("humanpose3d.scene.build")
camera = importlib.import_module("humanpose3d.scene.camera")
world_frame = importlib.import_module("humanpose3d.engine.world_frame")
cli = importlib.import_module("humanpose3d.engine.cli")
settings = importlib.import_module("humanpose3d.operators.settings")
run_mod = importlib.import_module("humanpose3d.operators.run")
service = importlib.import_module("humanpose3d.engine.service")

OFFSETS = (0, 3, -2)


def _look_at(eye: np.ndarray, target: np.ndarray, roll_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """R, t (x_c = R @ x + t) of an OpenCV camera at `eye` looking at `target`, image "down" along the
    engine's +y (camera 0's down), turned by `roll_deg` about its optical axis."""
    z = (target - eye) / np.linalg.norm(target - eye)
    y = np.array([0.0, 1.0, 0.0]) - z[1] * z
    y /= np.linalg.norm(y)
    x = np.cross(y, z)
    R = np.stack([x, y, z])
    a = np.radians(roll_deg)
    roll = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])
    R = roll @ R
    return R, -R @ eye


def _views(markers: np.ndarray, K0: np.ndarray, size0: tuple[int, int], missing: Path) -> dict:
    centre = np.nanmean(markers.reshape(-1, 3), axis=0)
    R1, t1 = _look_at(centre + [3.0, -0.4, 0.0], centre)
    R2, t2 = _look_at(centre + [-1.5, -1.2, 2.5], centre, roll_deg=12.0)
    K1 = np.array([[1400.0, 0, 520.0], [0, 1400.0, 1000.0], [0, 0, 1]])
    K2 = np.array([[1700.0, 0, 1010.0], [0, 1700.0, 500.0], [0, 0, 1]])
    video_dir = demo_video().parent
    return {
        "views_names": np.array(["cam01", "cam02", "cam03"]),
        "views_K": np.stack([K0, K1, K2]),
        "views_R": np.stack([np.eye(3), R1, R2]),
        "views_t": np.stack([np.zeros(3), t1, t2]),
        "views_size": np.array([size0, (1080, 1920), (1920, 1088)]),
        "views_video": np.array([str(video_dir / "cam01.mp4"), str(video_dir / "cam02.mp4"), str(missing)]),
        "views_offset": np.array(OFFSETS),
    }


def _write_npz(folder: Path, stem: str, extra: dict | None, drop_views: bool = False) -> None:
    path = folder / f"{stem}_markers.npz"
    with np.load(path) as d:
        arrays = {k: d[k] for k in d.files if not (drop_views and k.startswith("views_"))}
    arrays.update(extra or {})
    np.savez(path, **arrays)


@pytest.fixture(scope="module")
def result(cam01_run, addon, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A copy of the shared cam01 result with three calibrated cameras (see the module doc)."""
    src = Path(cam01_run.result.out_dir)
    folder = tmp_path_factory.mktemp("multiview") / src.name
    shutil.copytree(src, folder)
    stem = src.name
    with np.load(folder / f"{stem}_markers.npz") as d:
        markers = np.asarray(d["markers_33_camera"], dtype=np.float64)
        K0 = np.asarray(d["K"], dtype=np.float64)
        first = int(d["first_frame"])
    k = json.loads((folder / "run.json").read_text())["intrinsics"]
    views = _views(markers, K0, (int(k["width"]), int(k["height"])), folder / "gone" / "cam03.mp4")
    _write_npz(folder, stem, views)
    W = world_frame.world_from_camera(json.loads((folder / "run.json").read_text()), markers)
    return SimpleNamespace(folder=folder, stem=stem, markers=markers, first=first, views=views, W=W)


def _imported(folder: Path) -> dict:
    bpy.ops.wm.read_factory_settings(use_empty=True)  # keeps the add-on registered
    built = build.build_scene(build.load_result(folder), bpy.context.scene)
    bpy.context.view_layer.update()  # world matrices of objects placed by location and rotation
    return built


def _hp3d_cameras(scene: bpy.types.Scene) -> list[str]:
    return sorted(o.name for o in scene.objects if o.type == "CAMERA" and o.name.startswith("HP3D_"))


# --- reading and building -----------------------------------------------------------------------

def test_load_result_reads_every_camera(result) -> None:
    res = build.load_result(result.folder)
    v = result.views
    assert [view.name for view in res.views] == ["cam01", "cam02", "cam03"]
    for c, view in enumerate(res.views):
        np.testing.assert_array_equal(view.K, v["views_K"][c])
        np.testing.assert_array_equal(view.R, v["views_R"][c])
        np.testing.assert_array_equal(view.t, v["views_t"][c])
        assert view.size == tuple(int(s) for s in v["views_size"][c])
        assert view.video == Path(str(v["views_video"][c])) and view.offset == OFFSETS[c]
    assert res.views[2].intrinsics == {"fx": 1700.0, "fy": 1700.0, "cx": 1010.0, "cy": 500.0,
                                       "width": 1920, "height": 1088}


def test_single_camera_results_have_no_views(cam01_run, addon) -> None:
    res = build.load_result(cam01_run.result.out_dir)
    assert res.views == []
    built = _imported(cam01_run.result.out_dir)
    assert built["views"] == [] and _hp3d_cameras(bpy.context.scene) == [f"HP3D_{res.stem}_camera"]


def test_one_camera_per_view_named_after_the_calibration(result) -> None:
    built = _imported(result.folder)
    scene = bpy.context.scene
    stem = result.stem
    assert [c.name for c in built["views"]] == [f"HP3D_{stem}_cam02", f"HP3D_{stem}_cam03"]
    assert _hp3d_cameras(scene) == sorted([f"HP3D_{stem}_camera", f"HP3D_{stem}_cam02", f"HP3D_{stem}_cam03"])
    coll = built["collection"]
    assert all(coll in cam.users_collection for cam in built["views"])
    # Camera 0 stays the scene camera, at the engine frame's origin in the world, with its own size.
    assert scene.camera == built["camera"]
    np.testing.assert_allclose(np.array(built["camera"].location), result.W[:3, 3], atol=1e-5)
    size0 = tuple(int(s) for s in result.views["views_size"][0])
    assert (scene.render.resolution_x, scene.render.resolution_y) == size0


def _engine_pixels(result, c: int, t: int) -> np.ndarray:
    """The engine markers of frame t projected through camera c's K, R, t (OpenCV), independently
    of the add-on's code."""
    v = result.views
    x_c = result.markers[t] @ v["views_R"][c].T + v["views_t"][c]
    uvw = x_c @ v["views_K"][c].T
    return uvw[:, :2] / uvw[:, 2:]


def test_every_camera_reproduces_the_engine_projection(result) -> None:
    """Each Blender camera, with the scene set to that camera's image size, projects the engine's
    markers (carried into the scene's world) where the engine's calibrated camera does: within 1 px."""
    built = _imported(result.folder)
    scene = bpy.context.scene
    cams = [built["camera"], *built["views"]]
    valid = np.isfinite(result.markers).all(axis=2)
    for c, cam in enumerate(cams):
        camera.use_camera(scene, cam)
        assert scene.camera == cam
        assert (scene.render.resolution_x, scene.render.resolution_y) == tuple(
            int(s) for s in result.views["views_size"][c])
        for t in (0, result.markers.shape[0] // 2, result.markers.shape[0] - 1):
            ok = valid[t]
            assert ok.sum() > 20
            world = world_frame.transform_points(result.W, result.markers[t][ok])
            got = camera_pixels(scene, cam, world)
            want = _engine_pixels(result, c, t)[ok]
            err = np.abs(got - want).max()
            assert err < 1.0, (cam.name, t, err)
        # The subject is in view (the test would mean little with every point off-image).
        inside = (want >= 0).all(axis=1) & (want[:, 0] < scene.render.resolution_x) & (
            want[:, 1] < scene.render.resolution_y)
        assert inside.mean() > 0.9, cam.name
    # The camera sits where the calibration puts it: -Rᵀt in the engine frame, in the world.
    R1, t1 = result.views["views_R"][1], result.views["views_t"][1]
    np.testing.assert_allclose(np.array(built["views"][0].location),
                               world_frame.transform_points(result.W, -R1.T @ t1), atol=1e-5)


def test_armature_joints_project_like_the_engine_markers(result) -> None:
    """The animated armature, seen through a further camera at a given frame, lies where the engine's
    hip and knee markers project in that camera (the bones' heads are these joints)."""
    built = _imported(result.folder)
    scene = bpy.context.scene
    arm, cam = built["armature"], built["views"][0]
    camera.use_camera(scene, cam)
    mp = importlib.import_module("humanpose3d.engine.joint_sets").MP
    t = result.markers.shape[0] // 2
    scene.frame_set(result.first + 1 + t)
    for bone, joint in (("thigh.L", "left_hip"), ("shin.L", "left_knee"), ("thigh.R", "right_hip"),
                        ("shin.R", "right_knee")):
        head = arm.matrix_world @ arm.pose.bones[bone].head
        got = camera_pixels(scene, cam, np.array([tuple(head)]))[0]
        want = _engine_pixels(result, 1, t)[mp[joint]]
        assert np.abs(got - want).max() < 1.0, (bone, got, want)


def test_each_camera_shows_its_own_video_shifted_by_its_offset(result) -> None:
    """Result frame i is at Blender frame first+1+i and is camera c's video frame first+offset+i:
    the clip's frame 1 (video frame 0) sits at Blender frame 1 - offset."""
    built = _imported(result.folder)
    cam0, cam02, cam03 = built["camera"], *built["views"]
    clip0 = cam0.data.background_images[0].clip
    assert Path(bpy.path.abspath(clip0.filepath)).name == "cam01.mp4" and clip0.frame_start == 1
    bg = cam02.data.background_images
    assert cam02.data.show_background_images and len(bg) == 1 and bg[0].source == "MOVIE_CLIP"
    assert Path(bpy.path.abspath(bg[0].clip.filepath)) == demo_video().parent / "cam02.mp4"
    assert bg[0].clip.frame_start == 1 - OFFSETS[1] and bg[0].clip.frame_offset == 0
    # Blender frame b shows clip frame b - frame_start + 1, i.e. video frame b - frame_start.
    i = 10
    b = result.first + 1 + i
    assert b - bg[0].clip.frame_start == result.first + OFFSETS[1] + i
    # A video that is gone leaves its camera without a background, not without the camera.
    assert len(cam03.data.background_images) == 0 and not cam03.data.show_background_images
    assert tuple(cam03.data["hp3d_size"]) == (1920, 1088)


def test_reimport_replaces_every_camera(result) -> None:
    """Importing the same result again (the Import operator) rebuilds its cameras in place; after
    the result is re-run with one camera, its former further cameras are gone."""
    _imported(result.folder)
    scene = bpy.context.scene
    before = _hp3d_cameras(scene)
    n_data, n_colls = len(bpy.data.cameras), len(bpy.data.collections)
    scene.hp3d.result_dir = str(result.folder)
    for _ in range(2):
        assert bpy.ops.humanpose3d.import_result() == {"FINISHED"}
    assert _hp3d_cameras(scene) == before and len(before) == 3
    assert len(bpy.data.cameras) == n_data and len(bpy.data.collections) == n_colls
    # New offsets reach the clips on re-import.
    _write_npz(result.folder, result.stem, {"views_offset": np.array([0, 5, 1])})
    try:
        assert bpy.ops.humanpose3d.import_result() == {"FINISHED"}
        cam02 = scene.objects[f"HP3D_{result.stem}_cam02"]
        assert cam02.data.background_images[0].clip.frame_start == 1 - 5
        _write_npz(result.folder, result.stem, None, drop_views=True)
        assert bpy.ops.humanpose3d.import_result() == {"FINISHED"}
        assert _hp3d_cameras(scene) == [f"HP3D_{result.stem}_camera"]
        assert len(bpy.data.cameras) == n_data - 2
    finally:
        _write_npz(result.folder, result.stem, result.views)


# --- panel → engine -----------------------------------------------------------------------------

@pytest.fixture
def props(addon, tmp_path: Path):
    props = bpy.context.scene.hp3d
    for prop in props.bl_rna.properties:
        if not prop.is_readonly and prop.identifier not in ("rna_type", "name"):
            props.property_unset(prop.identifier)
    props.views.clear()
    props.video_path = str(demo_video())
    props.output_dir = str(tmp_path / "out")
    yield props
    props.views.clear()


def _videos() -> list[Path]:
    d = demo_video().parent
    return [d / "cam01.mp4", d / "cam02.mp4", d / "cam03.mp4"]


def test_add_and_remove_further_videos(props) -> None:
    v = _videos()
    assert not bpy.ops.humanpose3d.view_remove.poll()
    assert bpy.ops.humanpose3d.view_add(filepath=str(v[1])) == {"FINISHED"}
    assert bpy.ops.humanpose3d.view_add(filepath=str(v[2])) == {"FINISHED"}
    assert [x.path for x in props.views] == [str(v[1]), str(v[2])] and props.views_index == 1
    props.views_index = 0
    assert bpy.ops.humanpose3d.view_remove() == {"FINISHED"}
    assert [x.path for x in props.views] == [str(v[2])] and props.views_index == 0
    assert bpy.ops.humanpose3d.view_remove() == {"FINISHED"}
    assert len(props.views) == 0 and not bpy.ops.humanpose3d.view_remove.poll()


def test_panel_settings_become_the_engines_multi_camera_run(props, tmp_path: Path) -> None:
    v = _videos()
    calib = tmp_path / "Calib.toml"
    calib.write_text("[cam_01]\n")
    for path in v[1:]:
        props.views.add().path = str(path)
    props.views.add().path = "  "  # an empty row is not a video
    props.calib_path = str(calib)
    props.sync_offsets = "0, 3,-2"
    cfg = settings.run_config(props)
    assert (cfg.video, cfg.views, cfg.calib) == (v[0], (v[1], v[2]), calib)
    assert cfg.sync_offsets == (0, 3, -2) and cfg.height_m == pytest.approx(1.72)
    # The panel's default pose model leaves the choice to the engine: heavy for calibrated cameras.
    assert cfg.pose_model == "heavy"
    props.pose_model = "lite"
    assert settings.run_config(props).pose_model == "lite"
    props.pose_model = "AUTO"
    props.sync_offsets = "auto"
    assert settings.run_config(props).sync_offsets is None
    # One camera: exactly today's config, whatever the calibration and offsets fields hold.
    props.views.clear()
    props.sync_offsets = "0,3"
    single = settings.run_config(props)
    assert (single.views, single.calib, single.sync_offsets, single.pose_model) == ((), None, None, "full")


def test_run_operator_hands_the_engine_all_videos_and_builds_every_camera(props, result, tmp_path: Path,
                                                                          monkeypatch) -> None:
    """The Run operator (background, through the Engine Python child) starts the engine with the
    panel's multi-camera arguments and builds the result's cameras."""
    v = _videos()
    calib = tmp_path / "Calib.toml"
    calib.write_text("[cam_01]\n")
    props.views.add().path = str(v[1])
    props.calib_path = str(calib)
    props.sync_offsets = "0,-2"
    started: list[tuple[object, str | None]] = []

    def fake_start(cfg, python=None):
        started.append((cfg, python))
        return "run"

    done = service.Event("done", 1.0, out_dir=str(result.folder), frames=5)
    monkeypatch.setattr(run_mod, "engine_python", lambda context: "/opt/engine/python")
    monkeypatch.setattr(service, "start", fake_start)
    monkeypatch.setattr(service, "wait", lambda run, on_event=None: done)
    assert bpy.ops.humanpose3d.run() == {"FINISHED"}
    ((cfg, python),) = started
    assert python == "/opt/engine/python" and cfg == settings.run_config(props)
    assert (cfg.video, cfg.views, cfg.calib, cfg.sync_offsets) == (v[0], (v[1],), calib, (0, -2))
    names = _hp3d_cameras(bpy.context.scene)
    assert f"HP3D_{result.stem}_cam02" in names and f"HP3D_{result.stem}_cam03" in names


def test_run_refuses_further_videos_without_a_calibration(props, tmp_path: Path) -> None:
    run_cls = run_mod.HP3D_OT_run
    props.views.add().path = str(_videos()[1])
    assert not run_cls.poll(bpy.context)
    with pytest.raises(RuntimeError, match="further videos need a calibration file"):
        bpy.ops.humanpose3d.run()
    # The panel says so under the Cameras list, and offers the list and its buttons.
    sidebar = importlib.import_module("humanpose3d.panels.sidebar")
    calls = drawn(sidebar.HP3D_PT_main, bpy.context)
    assert_drawn_names_exist(calls, bpy.ops)
    labels = [kw.get("text") for name, _, kw in calls if name == "label"]
    assert "Further videos need a calibration file" in labels
    lists = [args for name, args, _ in calls if name == "template_list"]
    assert lists == [("HP3D_UL_views", "", props, "views", props, "views_index")]
    shown = {args[1] for name, args, _ in calls if name == "prop"}
    assert {"calib_path", "sync_offsets"} <= shown
    ops = {args[0] for name, args, _ in calls if name == "operator"}
    assert {"humanpose3d.view_add", "humanpose3d.view_remove"} <= ops
    # With a calibration file the message goes; what is still wrong is one line from Run.
    props.calib_path = str(tmp_path / "missing.toml")
    calls = drawn(sidebar.HP3D_PT_main, bpy.context)
    assert "Further videos need a calibration file" not in [kw.get("text") for n, _, kw in calls
                                                            if n == "label"]
    assert run_cls.poll(bpy.context)
    with pytest.raises(RuntimeError, match="calibration not found: .*missing.toml"):
        bpy.ops.humanpose3d.run()
    (tmp_path / "missing.toml").write_text("[cam_01]\n")
    props.sync_offsets = "0,3,1"
    with pytest.raises(RuntimeError, match=r"sync offsets: give one per video \(2\), got 3"):
        bpy.ops.humanpose3d.run()
    props.sync_offsets = "0,x"
    with pytest.raises(RuntimeError, match="sync offsets must be whole frame numbers"):
        bpy.ops.humanpose3d.run()
    props.sync_offsets = "auto"
    props.views[0].path = str(tmp_path / "nope.mp4")
    with pytest.raises(RuntimeError, match="video not found: .*nope.mp4"):
        bpy.ops.humanpose3d.run()


# --- headless.py --------------------------------------------------------------------------------

def _headless_argv(result, tmp_path: Path, calib: Path) -> tuple[list[str], list[str]]:
    v = _videos()
    engine = [str(v[0]), str(v[1]), str(v[2]), "--calib", str(calib), "--sync-offsets=0,3,-2",
              "--height", "1.72", "--out", str(tmp_path / "out")]
    ours = ["--keep-scene", "--blend", str(tmp_path / "scene.blend")]
    return engine, ours


def test_headless_passes_the_videos_and_calibration_to_the_engine_child(result, addon, tmp_path: Path,
                                                                         monkeypatch, capsys) -> None:
    calib = tmp_path / "Calib.toml"
    calib.write_text("[cam_01]\n")
    engine, ours = _headless_argv(result, tmp_path, calib)
    started: list[tuple[object, str | None]] = []

    def fake_start(cfg, python=None):
        started.append((cfg, python))
        return "run"

    monkeypatch.setattr(service, "start", fake_start)
    monkeypatch.setattr(service, "wait", lambda run, on_event=None: service.Event("done", 1.0,
                                                                               out_dir=str(result.folder)))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    argv = ["blender", "--", engine[0], *ours[:1], *engine[1:], "--engine-python", "/opt/py", *ours[1:]]
    assert headless.main(argv) == 0
    ((cfg, python),) = started
    v = _videos()
    assert python == "/opt/py"
    assert cfg == cli.config_from_args(cli.build_parser().parse_args(["run", *engine]))
    assert (cfg.video, cfg.views, cfg.sync_offsets) == (v[0], (v[1], v[2]), (0, 3, -2))
    out = capsys.readouterr().out
    assert f"cameras: HP3D_{result.stem}_camera, HP3D_{result.stem}_cam02, HP3D_{result.stem}_cam03" in out
    assert (tmp_path / "scene.blend").is_file()


def test_headless_in_process_run_gets_the_multi_camera_config(result, addon, tmp_path: Path,
                                                              monkeypatch) -> None:
    calib = tmp_path / "Calib.toml"
    calib.write_text("[cam_01]\n")
    engine, ours = _headless_argv(result, tmp_path, calib)
    pipeline = importlib.import_module("humanpose3d.engine.pipeline")
    configs = []

    def fake_run(cfg, progress=None, cancel=None):
        configs.append(cfg)
        return SimpleNamespace(out_dir=result.folder, record={"frames": {"read": 1}, "detection_rate": 1.0,
                                                              "timings": {"total_s": 0.1}})

    monkeypatch.setattr(pipeline, "run", fake_run)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    assert headless.main(["headless.py", "--", *engine, *ours]) == 0
    v = _videos()
    (cfg,) = configs
    assert (cfg.video, cfg.views, cfg.calib, cfg.sync_offsets) == (v[0], (v[1], v[2]), calib, (0, 3, -2))
    assert cfg.height_m == pytest.approx(1.72) and cfg.out_dir == tmp_path / "out"


# --- end to end ---------------------------------------------------------------------------------

def test_headless_multi_camera_run_on_the_demo_builds_cameras_that_match_the_engines(addon, tmp_path: Path,
                                                                                    capsys) -> None:
    """The real engine on two of the demo's calibrated cameras (Pose2Sim's Qualisys calibration turned
    into its TOML by the engine), through headless.py: the second camera reproduces the engine's own
    projection of its triangulated markers, its clip is shifted by the offset given."""
    calibration = importlib.import_module("humanpose3d.engine.calibration")
    demo = demo_video().parents[1]
    calib = tmp_path / "Calib.toml"
    calibration.convert_qualisys(demo / "calibration" / "Calib.qca.txt", calib)
    v = _videos()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    # 20 frames are too few for the engine to find the offset from motion: give it.
    argv = ["--", str(v[0]), str(v[1]), "--calib", str(calib), "--sync-offsets=0,2", "--height", "1.72",
            "--frames", "0:20",
            "--no-plots", "--out", str(tmp_path / "out"), "--keep-scene"]
    assert headless.main(argv) == 0
    assert "cameras: HP3D_cam01_camera, HP3D_cam01_cam02" in capsys.readouterr().out
    folder = tmp_path / "out" / "cam01"
    res = build.load_result(folder)
    assert [view.name for view in res.views] == ["cam01", "cam02"]
    assert [view.video for view in res.views] == [v[0].resolve(), v[1].resolve()]
    scene = bpy.context.scene
    bpy.context.view_layer.update()
    cam = scene.objects["HP3D_cam01_cam02"]
    view = res.views[1]
    assert view.offset == 2 and cam.data.background_images[0].clip.frame_start == 1 - 2
    camera.use_camera(scene, cam)
    t = 10
    ok = np.isfinite(res.markers_camera[t]).all(axis=1)
    x_c = res.markers_camera[t][ok] @ view.R.T + view.t
    uvw = x_c @ view.K.T
    want = uvw[:, :2] / uvw[:, 2:]
    W = world_frame.world_from_camera(res.record, res.markers_camera)
    assert res.record["biomechanics"]["level"]["vertical"] == "given"  # the calibration's vertical
    got = camera_pixels(scene, cam, world_frame.transform_points(W, res.markers_camera[t][ok]))
    assert ok.sum() > 20 and np.abs(got - want).max() < 1.0
