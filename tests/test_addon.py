"""The Blender add-on with the bpy module: registration, the Run operator in background mode on
real video, the armature it builds against the engine's joints, keyframes, camera, Import, the
manifest, headless.py and FBX."""

from __future__ import annotations

import importlib
import json
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import assert_drawn_names_exist, demo_video, drawn, load_headless

bpy = pytest.importorskip("bpy")

ROOT = Path(__file__).resolve().parents[1]
HEIGHT_M = 1.72
FRAMES = (0, 30)


headless = load_headless()
pkg = headless.load_package()  # the add-on as Blender imports it, under one package name
world_frame = importlib.import_module("humanpose3d.engine.world_frame")
joint_sets = importlib.import_module("humanpose3d.engine.joint_sets")
MP = joint_sets.MP




@pytest.fixture(scope="module")
def operator_run(addon, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The Run operator on cam01 frames 0:30, in background mode (in-process, synchronous)."""
    video = demo_video()
    out = tmp_path_factory.mktemp("addon_run")
    props = bpy.context.scene.hp3d
    props.video_path = str(video)
    props.height_m = HEIGHT_M
    props.output_dir = str(out)
    props.frame_start, props.frame_stop = FRAMES
    assert bpy.ops.humanpose3d.run() == {"FINISHED"}
    folder = Path(props.result_dir)
    arm = bpy.context.view_layer.objects.active
    with np.load(folder / f"{video.stem}_markers.npz") as d:
        markers = np.asarray(d["markers_33_camera"], dtype=np.float64)
        K = np.asarray(d["K"])
    return SimpleNamespace(video=video, folder=folder, armature_name=arm.name, markers=markers, K=K,
                           world=_world(folder, markers))


def _world(folder: Path, markers: np.ndarray) -> np.ndarray:
    """The engine's markers in the scene's world (engine/world_frame.py: levelled, Z up)."""
    record = json.loads((folder / "run.json").read_text())
    return world_frame.transform_points(world_frame.world_from_camera(record, markers), markers)


def _engine_joint(world: np.ndarray, name: str) -> np.ndarray:
    """A joint straight from the engine's markers (Blender world), independent of scene/."""
    if name == "pelvis":
        return 0.5 * (world[:, MP["left_hip"]] + world[:, MP["right_hip"]])
    if name == "thorax":
        return 0.5 * (world[:, MP["left_shoulder"]] + world[:, MP["right_shoulder"]])
    if name == "ears":
        return 0.5 * (world[:, MP["left_ear"]] + world[:, MP["right_ear"]])
    return world[:, MP[name]]


# Bone → (head joint, tail joint) in engine terms; None where the point is not an engine joint
# (the pelvis bone's tail and the head top are placed, not measured).
BONE_JOINTS: dict[str, tuple[str, str | None]] = {
    "pelvis": ("pelvis", None), "spine": ("pelvis", "thorax"), "neck": ("thorax", "ears"),
    "head": ("ears", None),
}
for _s, _S in (("left", "L"), ("right", "R")):
    BONE_JOINTS.update({
        f"shoulder.{_S}": ("thorax", f"{_s}_shoulder"),
        f"upper_arm.{_S}": (f"{_s}_shoulder", f"{_s}_elbow"),
        f"forearm.{_S}": (f"{_s}_elbow", f"{_s}_wrist"),
        f"hand.{_S}": (f"{_s}_wrist", f"{_s}_index"),
        f"thigh.{_S}": (f"{_s}_hip", f"{_s}_knee"),
        f"shin.{_S}": (f"{_s}_knee", f"{_s}_ankle"),
        f"foot.{_S}": (f"{_s}_ankle", f"{_s}_foot_index"),
    })


def _pose_errors(arm, world: np.ndarray, frames: list[int], first: int) -> dict[str, list[float]]:
    errors: dict[str, list[float]] = {}
    scene = bpy.context.scene
    for f in frames:
        scene.frame_set(f)
        t = f - first
        for name, (head, tail) in BONE_JOINTS.items():
            pb = arm.pose.bones[name]
            for joint, pos in ((head, pb.head), (tail, pb.tail)):
                if joint is None:
                    continue
                got = np.array(arm.matrix_world @ pos)
                err = float(np.linalg.norm(got - _engine_joint(world, joint)[t]))
                errors.setdefault(joint, []).append(err)
    return errors


# --- registration -------------------------------------------------------------------------------

def test_register_unregister_twice_cleanly(addon) -> None:
    names = ("HP3D_PT_main", "HUMANPOSE3D_OT_run", "HUMANPOSE3D_OT_cancel", "HUMANPOSE3D_OT_import_result")
    for _ in range(2):
        addon.unregister()
        assert not hasattr(bpy.types.Scene, "hp3d")
        assert not any(hasattr(bpy.types, n) for n in names)
        addon.register()
        assert all(hasattr(bpy.types, n) for n in names), [n for n in names if not hasattr(bpy.types, n)]
        assert hasattr(bpy.ops.humanpose3d, "run") and hasattr(bpy.ops.humanpose3d, "import_result")
        assert bpy.context.scene.hp3d.bl_rna.identifier == "HP3D_PG_settings"
        assert bpy.context.scene.hp3d.height_m == pytest.approx(1.72)
    panel = bpy.types.HP3D_PT_main
    assert (panel.bl_space_type, panel.bl_region_type, panel.bl_category) == ("VIEW_3D", "UI", "HumanPose3D")


def test_registration_does_not_import_the_heavy_engine() -> None:
    code = ("import sys, importlib.util as u; import bpy\n"
            f"spec = u.spec_from_file_location('humanpose3d', {str(ROOT / '__init__.py')!r}, "
            f"submodule_search_locations=[{str(ROOT)!r}])\n"
            "m = u.module_from_spec(spec); sys.modules['humanpose3d'] = m; spec.loader.exec_module(m)\n"
            "m.register(); m.unregister()\n"
            "print(sorted(n for n in ('cv2', 'ai_edge_litert', 'mediapipe', 'scipy', "
            "'humanpose3d.engine.pipeline') "
            "if n in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_panel_draws_idle_and_running(addon) -> None:
    """Call the panel's draw with a recording layout: every property and operator it names exists,
    and the running state shows a progress bar and Cancel instead of Run."""
    props = bpy.context.scene.hp3d
    for running in (False, True):
        props.running, props.progress, props.stage = running, 0.4, "pose 12/30"
        calls = drawn(bpy.types.HP3D_PT_main, bpy.context)
        assert_drawn_names_exist(calls, bpy.ops)
        ops = [c[1][0] for c in calls if c[0] == "operator"]
        if running:
            assert "humanpose3d.cancel" in ops and "humanpose3d.run" not in ops
            bar = {"factor": pytest.approx(0.4), "type": "BAR", "text": "pose 12/30"}
            assert ("progress", (), bar) in calls
        else:
            assert "humanpose3d.run" in ops and "humanpose3d.import_result" in ops
    props.running, props.stage = False, ""


def test_engine_arguments_from_panel_settings(addon) -> None:
    settings = importlib.import_module("humanpose3d.operators.settings")
    props = bpy.context.scene.hp3d  # every option: tests/test_addon_panel.py
    saved = {k: getattr(props, k) for k in ("video_path", "height_m", "mass_kg", "output_dir",
                                            "visibility_min", "cutoff_hz", "focal_px", "estimate_missing",
                                            "frame_start", "frame_stop", "overwrite")}
    props.video_path, props.height_m, props.mass_kg, props.output_dir = "/v/clip.mp4", 1.72, 80.0, "/tmp/o"
    props.visibility_min, props.cutoff_hz, props.focal_px = 0.5, 0.0, 1500.0
    props.estimate_missing, props.frame_start, props.frame_stop, props.overwrite = True, 10, 0, True
    try:
        cfg = settings.run_config(props)
    finally:
        for k, v in saved.items():
            setattr(props, k, v)
    assert (cfg.height_m, cfg.mass_kg, cfg.focal_px, cfg.cutoff_hz) == (1.72, 80.0, 1500.0, 0.0)
    assert cfg.frames == (10, None) and cfg.estimate_missing and cfg.force
    assert cfg.video == Path("/v/clip.mp4") and cfg.out_dir == Path("/tmp/o")


# --- the Run operator on real video -------------------------------------------------------------

def test_operator_armature_follows_engine_joints(operator_run) -> None:
    arm = bpy.data.objects[operator_run.armature_name]
    assert arm.type == "ARMATURE" and len(arm.data.bones) == len(BONE_JOINTS)
    scene = bpy.context.scene
    assert (scene.frame_start, scene.frame_end) == (FRAMES[0] + 1, FRAMES[1])
    frames = list(range(scene.frame_start, scene.frame_end + 1))
    errors = _pose_errors(arm, operator_run.world, frames, scene.frame_start)
    every = np.concatenate([np.array(v) for v in errors.values()])
    per_joint = {k: round(1000 * max(v), 1) for k, v in errors.items()}
    print(f"\narmature vs engine joints over {len(frames)} frames: median {1000 * np.median(every):.4f} mm, "
          f"max {1000 * every.max():.1f} mm; max per joint (mm): {per_joint}")
    assert np.median(every) <= 0.01 and every.max() <= 0.03
    # Every joint on a held bone length is reproduced exactly; only the ear centre (the neck's
    # length is not held by the engine) can drift.
    assert max(max(v) for k, v in errors.items() if k != "ears") < 1e-3


def _turns_deg(rot: np.ndarray) -> np.ndarray:
    """(T-1, B) angle of each bone's turn between consecutive frames of (T, B, 3, 3) rotations."""
    rel = np.einsum("tbji,tbjk->tbik", rot[:-1], rot[1:])
    return np.degrees(np.arccos(np.clip((np.trace(rel, axis1=-2, axis2=-1) - 1) / 2, -1, 1)))


def test_flipping_landmarks_spin_no_bone(addon, tmp_path: Path) -> None:
    """cam02: rolls come from single landmarks (the elbow's fold, heel and toe, the hand's points),
    and where those flip for a frame the raw bone frames spin (the Tasks API pose stage once spun an
    upper arm 163 deg and a shin 127 deg in one frame; today's tracker still spins bones up to
    80 deg). So that the steadying is always exercised, one frame's palm is flipped as well
    (_flip_palm). The armature's rolls are steadied
    (scene/skeleton.steady_frames): no leg bone turns more than 25 deg between frames, no bone
    more than 40 (a hand's direction itself jitters), and every joint still sits on the engine's."""
    pipeline = importlib.import_module("humanpose3d.engine.pipeline")
    config = importlib.import_module("humanpose3d.engine.config")
    build = importlib.import_module("humanpose3d.scene.build")
    skeleton = importlib.import_module("humanpose3d.scene.skeleton")
    video = demo_video().with_name("cam02.mp4")
    res = pipeline.run(config.RunConfig(video=video, height_m=HEIGHT_M, out_dir=tmp_path,
                                        joint_angles=False, angle_plots=False))
    scene = bpy.context.scene
    kept = (scene.frame_start, scene.frame_end, scene.render.fps, scene.render.fps_base)
    result = build.load_result(res.out_dir)
    _flip_palm(result.markers_camera)
    built = build.build_scene(result, scene, with_camera=False)
    try:
        _check_steady(built["armature"], scene, skeleton, _world(res.out_dir, result.markers_camera))
    finally:  # the module's Run result stays as the other tests expect it
        coll = built["collection"]
        for obj in list(coll.objects):
            bpy.data.objects.remove(obj)
        bpy.data.collections.remove(coll)
        scene.frame_start, scene.frame_end, scene.render.fps, scene.render.fps_base = kept


def _flip_palm(markers: np.ndarray) -> int:
    """Turn the right pinky half a turn about the wrist-index line in one mid-clip frame (in place),
    as a pose stage that swaps the hand's sides for a frame does: the hand bone (wrist to index)
    keeps its direction while the palm's across direction, its roll reference, flips. The raw bone
    frames then spin the hand whatever the pose stage's own flips, so the steadying is always
    exercised. Returns the frame."""
    w, i, p = (markers[:, MP[f"right_{j}"]] for j in ("wrist", "index", "pinky"))
    axis = (i - w) / np.linalg.norm(i - w, axis=-1, keepdims=True)
    rel = p - w
    across = np.linalg.norm(rel - np.sum(rel * axis, -1, keepdims=True) * axis, axis=-1)
    mid = slice(len(markers) // 4, 3 * len(markers) // 4)
    t = mid.start + int(np.nanargmax(across[mid]))  # the widest palm: the flip is a clear one
    along = np.dot(rel[t], axis[t]) * axis[t]
    markers[t, MP["right_pinky"]] = w[t] + 2 * along - rel[t]
    return t


def _check_steady(arm, scene, skeleton, world: np.ndarray) -> None:
    frames = list(range(scene.frame_start, scene.frame_end + 1))
    raw = skeleton.bone_frames(skeleton.skeleton_points(world))
    assert np.nanmax(_turns_deg(raw)) > 90  # the flaw is in these markers (at least the flipped palm)
    posed = []
    for f in frames:
        scene.frame_set(f)
        posed.append([np.array((arm.matrix_world @ arm.pose.bones[name].matrix).to_3x3().normalized())
                      for name in skeleton.BONE_NAMES])
    turns = dict(zip(skeleton.BONE_NAMES, _turns_deg(np.array(posed)).max(0)))
    raw_turns = np.nanmax(_turns_deg(raw), 0)
    print("\ncam02, largest turn between frames (deg), armature / raw markers: " + ", ".join(
        f"{n} {t:.0f}/{r:.0f}" for n, t, r in zip(skeleton.BONE_NAMES, turns.values(), raw_turns)))
    assert max(turns.values()) < 40  # a hand's direction itself jitters (20 deg/frame is the roll's cap)
    assert max(t for n, t in turns.items() if n.startswith(("thigh", "shin", "foot"))) < 25
    errors = _pose_errors(arm, world, frames, scene.frame_start)
    assert max(max(v) for k, v in errors.items() if k != "ears") < 1e-3


def test_bone_lengths_are_the_subjects(operator_run) -> None:
    arm = bpy.data.objects[operator_run.armature_name]
    w = operator_run.world
    for name, (head, tail) in BONE_JOINTS.items():
        if tail is None or name == "neck":
            continue
        want = np.nanmedian(np.linalg.norm(_engine_joint(w, tail) - _engine_joint(w, head), axis=-1))
        assert arm.data.bones[name].length == pytest.approx(want, abs=1e-4), name


def test_rolls_are_mirror_symmetric(operator_run) -> None:
    bones = bpy.data.objects[operator_run.armature_name].data.bones
    mirror = np.diag([-1.0, 1.0, 1.0])
    for name in BONE_JOINTS:
        if name.endswith(".L"):
            left = np.array(bones[name].matrix_local.to_3x3())
            right = np.array(bones[name[:-1] + "R"].matrix_local.to_3x3())
            np.testing.assert_allclose(mirror @ left[:, 1], right[:, 1], atol=1e-5)  # Y mirrored
            np.testing.assert_allclose(mirror @ left[:, 2], right[:, 2], atol=1e-5)  # Z mirrored


def test_keyframes_on_every_frame(operator_run) -> None:
    keyframes = importlib.import_module("humanpose3d.scene.keyframes")
    arm = bpy.data.objects[operator_run.armature_name]
    fcurves = list(keyframes.fcurve_collection(arm))
    assert len(fcurves) == 4 * len(BONE_JOINTS) + 3  # a quaternion per bone + the root's location
    want = np.arange(FRAMES[0] + 1, FRAMES[1] + 1, dtype=np.float32)
    for fc in fcurves:
        co = np.empty(2 * len(fc.keyframe_points), dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        np.testing.assert_array_equal(co[0::2], want, err_msg=f"{fc.data_path}[{fc.array_index}]")
        assert np.isfinite(co[1::2]).all()
    paths = {fc.data_path for fc in fcurves}
    assert 'pose.bones["pelvis"].location' in paths
    assert all(f'pose.bones["{n}"].rotation_quaternion' in paths for n in BONE_JOINTS)


def test_camera_reproduces_the_engine_projection(operator_run) -> None:
    from bpy_extras.object_utils import world_to_camera_view

    scene = bpy.context.scene
    cam = scene.camera
    assert cam is not None and cam.name.startswith("HP3D_")
    assert (scene.render.resolution_x, scene.render.resolution_y) == (1080, 1920)
    assert scene.render.fps / scene.render.fps_base == pytest.approx(60.0)
    K = operator_run.K
    W, H = scene.render.resolution_x, scene.render.resolution_y
    from mathutils import Vector

    for t in (0, 14, 29):
        cam_pts = operator_run.markers[t]
        uv = cam_pts[:, :2] / cam_pts[:, 2:] * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]
        got = []
        for p in operator_run.world[t]:
            v = world_to_camera_view(scene, cam, Vector(p))
            got.append((v.x * W, (1 - v.y) * H))
        np.testing.assert_allclose(np.array(got), uv, atol=0.05)
    data = cam.data
    assert data.show_background_images and data.background_images[0].clip is not None
    clip = data.background_images[0].clip
    assert clip.frame_start == 1 and clip.frame_duration >= FRAMES[1]


def test_camera_settings_for_an_off_centre_principal_point() -> None:
    camera = importlib.import_module("humanpose3d.scene.camera")
    s = camera.lens_settings(fx=1000.0, fy=1000.0, cx=700.0, cy=300.0, width=1280, height=720)
    assert s["lens"] == pytest.approx(1000 * 36 / 1280)
    assert s["shift_x"] == pytest.approx(-60 / 1280) and s["shift_y"] == pytest.approx(-60 / 1280)


def test_import_result_operator_rebuilds_the_same_animation(operator_run) -> None:
    """Importing the Run's folder again rebuilds the same animation in place of the first."""
    before = set(bpy.data.objects.keys())
    arm = bpy.data.objects[operator_run.armature_name]
    bpy.context.scene.frame_set(17)
    tails = {name: np.array(arm.pose.bones[name].tail) for name in BONE_JOINTS}
    assert bpy.ops.humanpose3d.import_result(directory=str(operator_run.folder)) == {"FINISHED"}
    assert set(bpy.data.objects.keys()) == before  # replaced, not duplicated
    assert bpy.data.objects[operator_run.armature_name] == arm
    bpy.context.scene.frame_set(1)
    bpy.context.scene.frame_set(17)
    for name in BONE_JOINTS:
        np.testing.assert_allclose(np.array(arm.pose.bones[name].tail), tails[name], atol=1e-6)
    with pytest.raises(RuntimeError, match=r"no \*_markers.npz"):  # an ERROR report, raised by bpy.ops
        bpy.ops.humanpose3d.import_result(directory=str(operator_run.folder / "missing"))


def test_gaps_in_the_markers_leave_gaps_in_the_keys(operator_run, tmp_path: Path) -> None:
    """Frames the engine could not fill (NaN) get no key, so Blender interpolates across them;
    a bone whose own joints are known keeps its keys even when a neighbour's are not."""
    build = importlib.import_module("humanpose3d.scene.build")
    keyframes = importlib.import_module("humanpose3d.scene.keyframes")
    stem = operator_run.video.stem
    with np.load(operator_run.folder / f"{stem}_markers.npz") as d:
        data = dict(d)
    m = data["markers_33_camera"].copy()
    m[5:8, MP["left_wrist"]] = np.nan
    m[10] = np.nan
    m[0] = np.nan  # the rest pose must come from the first whole frame, not frame 0
    data["markers_33_camera"] = m
    np.savez(tmp_path / f"{stem}_markers.npz", **data)
    shutil.copy(operator_run.folder / "run.json", tmp_path / "run.json")
    built = build.build_scene(build.load_result(tmp_path), bpy.context.scene, with_camera=False)
    keys = {}
    for fc in keyframes.fcurve_collection(built["armature"]):
        co = np.empty(2 * len(fc.keyframe_points))
        fc.keyframe_points.foreach_get("co", co)
        keys[fc.data_path.split('"')[1], fc.data_path.rsplit(".", 1)[1]] = set(co[0::2].astype(int))
    everything = set(range(FRAMES[0] + 1, FRAMES[1] + 1))
    assert keys["pelvis", "location"] == everything - {1, 11}
    assert keys["forearm.L", "rotation_quaternion"] == everything - {1, 6, 7, 8, 11}
    assert keys["hand.L", "rotation_quaternion"] == everything - {1, 6, 7, 8, 11}
    assert keys["upper_arm.L", "rotation_quaternion"] == everything - {1, 11}  # twist carried over
    assert keys["forearm.R", "rotation_quaternion"] == everything - {1, 11}
    rest_pelvis = np.array(built["armature"].data.bones["pelvis"].head_local)
    # The world comes from these markers (its heading and centre are medians over their frames).
    np.testing.assert_allclose(rest_pelvis, _engine_joint(_world(tmp_path, m), "pelvis")[1], atol=1e-6)


# --- manifest -----------------------------------------------------------------------------------

def _blender_ext() -> Path:
    """Blender's extension tool (`blender --command extension …`), shipped inside the bpy wheel."""
    found = sorted(Path(bpy.__file__).resolve().parents[3].rglob("bl_pkg/cli/blender_ext.py"))
    assert found, "the bpy wheel (5.0 and 4.2 alike) ships bl_pkg/cli/blender_ext.py; it is missing"
    return found[0]


def test_manifest_validates_with_blenders_extension_tool() -> None:
    out = subprocess.run([sys.executable, str(_blender_ext()), "validate", str(ROOT)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    import tomllib

    manifest = tomllib.loads((ROOT / "blender_manifest.toml").read_text())
    assert manifest["id"] == "humanpose3d" and manifest["blender_version_min"] == "4.2.0"
    assert len(manifest["tagline"]) <= 64 and manifest["type"] == "add-on"


def test_extension_package_holds_the_addon_and_engine_only(tmp_path: Path) -> None:
    zip_path = tmp_path / "hp3d.zip"
    out = subprocess.run([sys.executable, str(_blender_ext()), "build", "--source-dir", str(ROOT),
                          "--output-filepath", str(zip_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    import zipfile

    names = set(zipfile.ZipFile(zip_path).namelist())
    for need in ("__init__.py", "blender_manifest.toml", "headless.py", "engine/pipeline.py",
                 "engine/child.py", "panels/sidebar.py", "scene/armature.py"):
        assert need in names, need
    assert not any(n.startswith(("tests/", "benchmarks/", ".", "output/")) or "__pycache__" in n
                   for n in names), sorted(names)


# --- headless.py and FBX ------------------------------------------------------------------------

FBX_CHECK = r"""
import json, sys
import bpy
import addon_utils
bpy.ops.wm.read_factory_settings(use_empty=True)
addon_utils.enable("io_scene_fbx", default_set=True)
bpy.ops.import_scene.fbx(filepath=sys.argv[1], anim_offset=0.0)
arm = next(o for o in bpy.data.objects if o.type == "ARMATURE")
heads = {}
for f in (1, 5, 10):
    bpy.context.scene.frame_set(f)
    heads[f] = {pb.name: list(arm.matrix_world @ pb.head) for pb in arm.pose.bones}
print("JSON" + json.dumps({"objects": [o.type for o in bpy.data.objects],
                           "bones": [b.name for b in arm.data.bones],
                           "frame_range": list(arm.animation_data.action.frame_range), "heads": heads}))
"""


@pytest.fixture(scope="module")
def headless_run(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """`python headless.py -- VIDEO …` on frames 0:10 with --blend and --fbx."""
    video = demo_video()
    tmp = tmp_path_factory.mktemp("headless")
    out = subprocess.run([sys.executable, str(ROOT / "headless.py"), "--", str(video), "--height",
                          str(HEIGHT_M), "--out", str(tmp / "out"), "--frames", "0:10", "--blend",
                          str(tmp / "scene.blend"), "--fbx", str(tmp / "anim.fbx")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    with np.load(tmp / "out" / video.stem / f"{video.stem}_markers.npz") as d:
        world = _world(tmp / "out" / video.stem, np.asarray(d["markers_33_camera"], dtype=np.float64))
    return SimpleNamespace(tmp=tmp, stdout=out.stdout, world=world)


def test_headless_help_lists_its_and_the_engines_options() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "headless.py"), "--", "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for flag in ("--blend", "--fbx", "--import-result", "--height", "--frames", "--focal-px"):
        assert flag in out.stdout


def test_headless_writes_blend_and_fbx(headless_run) -> None:
    assert "18 bones, frames 1-10" in headless_run.stdout
    assert (headless_run.tmp / "scene.blend").stat().st_size > 0
    assert (headless_run.tmp / "anim.fbx").stat().st_size > 0


def test_fbx_round_trip_in_blender(headless_run) -> None:
    out = subprocess.run([sys.executable, "-c", FBX_CHECK, str(headless_run.tmp / "anim.fbx")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(next(ln[4:] for ln in out.stdout.splitlines() if ln.startswith("JSON")))
    assert data["objects"] == ["ARMATURE"]  # armature only: no camera, no leaf bones
    assert sorted(data["bones"]) == sorted(BONE_JOINTS)
    assert data["frame_range"] == [1.0, 10.0]
    w = headless_run.world
    for f, heads in data["heads"].items():
        t = int(f) - 1
        for name, (joint, _) in BONE_JOINTS.items():
            err = np.linalg.norm(np.array(heads[name]) - _engine_joint(w, joint)[t])
            assert err < (0.03 if joint == "ears" else 1e-3), (f, name, err)


def _fbx_unit_scale(path: Path) -> float:
    data = path.read_bytes()
    i = data.index(b"UnitScaleFactor")
    j = data.index(b"D", i + len(b"UnitScaleFactor") + 20)  # the property's double value
    return struct.unpack("<d", data[j + 1:j + 9])[0]


def _assimp_world_positions(xml_path: Path, key: int) -> dict[str, np.ndarray]:
    """Forward kinematics over an `assimp dump -x` file at animation key `key`: world origin of
    every node, from the node tree and its animation channels (assimp writes quaternions x y z w)."""
    root = ET.parse(xml_path).getroot()
    anims = {}
    for na in root.iter("NodeAnim"):
        pos = [float(v) for v in na.find("PositionKeyList")[key].text.split()]
        x, y, z, w = (float(v) for v in na.find("RotationKeyList")[key].text.split())
        scl = [float(v) for v in na.find("ScalingKeyList")[key].text.split()]
        R = np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                      [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                      [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
        M = np.eye(4)
        M[:3, :3] = R * np.array(scl)
        M[:3, 3] = pos
        anims[na.get("node")] = M
    out: dict[str, np.ndarray] = {}

    def walk(node, parent: np.ndarray) -> None:
        name = node.get("name")
        local = anims.get(name)
        if local is None:
            local = np.array([float(v) for v in node.find("Matrix4").text.split()]).reshape(4, 4)
        world = parent @ local
        out[name] = world[:3, 3]
        for child in node.iterfind("NodeList/Node"):
            walk(child, world)

    walk(root.find("Scene/Node"), np.eye(4))
    return out


def test_fbx_read_by_assimp_has_metres_y_up(headless_run) -> None:
    """An independent reader (Open Asset Import) sees Y-up metres: Blender (x, y, z) → (x, z, -y)."""
    # The independent FBX/BVH reader; `make test` installs it (scripts/test_deps.sh).
    assert shutil.which("assimp"), "assimp is missing: apt-get install assimp-utils"
    fbx = headless_run.tmp / "anim.fbx"
    assert _fbx_unit_scale(fbx) == 100.0  # 1 file unit = 100 cm: Unity and Unreal read metres
    xml = headless_run.tmp / "anim.xml"
    out = subprocess.run(["assimp", "dump", str(fbx), str(xml), "-x"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    w = headless_run.world
    to_fbx = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])
    errors = []
    for key in (0, 4, 9):  # keys start at the first exported frame (Blender frame 1 = video frame 0)
        pos = _assimp_world_positions(xml, key)
        for name, (joint, _) in BONE_JOINTS.items():
            if joint != "ears":
                errors.append(np.linalg.norm(pos[name] - to_fbx @ _engine_joint(w, joint)[key]))
    assert max(errors) < 1e-3, max(errors)
    root = ET.parse(xml).getroot()
    assert len(list(root.iter("NodeAnim"))) == len(BONE_JOINTS) + 1  # bones + the armature node
