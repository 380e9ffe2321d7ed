"""The Blender scene in the levelled world (engine/world_frame.py, used by scene/build.py): the
armature stands on z = 0 facing -Y with the TRC's vertical, the camera is carried along so that
every joint projects where it did when the scene was the camera frame (and where the engine's
intrinsics put it), the 4x4 is stored on the collection and armature, and the FBX (every preset) and
BVH come back upright from a fresh import.

The demo subject (cam01) stands for the first few frames, then bends forward (the trunk reaches
40-44 deg from the vertical in the calibrated 4-view reconstruction too), so "upright" is checked
on the standing frames and, on every frame, as the TRC's own trunk angle."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
from conftest import camera_pixels, load_headless  # noqa: E402

load_headless().load_package()
build = importlib.import_module("humanpose3d.scene.build")
camera = importlib.import_module("humanpose3d.scene.camera")
export = importlib.import_module("humanpose3d.scene.export")
world_frame = importlib.import_module("humanpose3d.engine.world_frame")
coords = importlib.import_module("humanpose3d.engine.coords")
trc_io = importlib.import_module("humanpose3d.engine.trc")

STANDING = range(0, 10)  # result frames where the demo subject stands upright (see the module doc)
FEET = ("foot.L", "foot.R")


@pytest.fixture(autouse=True, scope="module")
def _clean_blender():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield
    bpy.ops.wm.read_factory_settings(use_empty=True)


def _trc_trunk_deg(folder: Path) -> np.ndarray:
    """Per frame, the final TRC's Hip → Neck direction's angle from its vertical (Y): the engine's
    own levelled file, the spine bone's head and tail points."""
    trc, names, _ = trc_io.read_trc(next(folder.glob("*_final.trc")))
    v = trc[:, names.index("Neck")] - trc[:, names.index("Hip")]
    return np.degrees(np.arccos(v[:, 1] / np.linalg.norm(v, axis=1)))


@pytest.fixture(scope="module")
def built(cam01_run) -> SimpleNamespace:
    folder = Path(cam01_run.result.out_dir)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    res = build.load_result(folder)
    out = build.build_scene(res, bpy.context.scene)
    bpy.context.view_layer.update()
    feet = {b: out["armature"].data.bones[b].length for b in FEET}
    return SimpleNamespace(folder=folder, result=res, built=out, W=out["world"].matrix,
                           trunk=_trc_trunk_deg(folder), feet=feet)


def _pose(arm, frames) -> dict[str, np.ndarray]:
    """(F, 3) world head/tail per bone and frame of an armature as the scene evaluates it."""
    scene = bpy.context.scene
    out: dict[str, list] = {}
    for f in frames:
        scene.frame_set(f)
        M = arm.matrix_world
        for pb in arm.pose.bones:
            out.setdefault(pb.name + ":head", []).append(tuple(M @ pb.head))
            out.setdefault(pb.name + ":tail", []).append(tuple(M @ pb.tail))
    return {k: np.array(v) for k, v in out.items()}


def _upright_figures(pose: dict[str, np.ndarray], names: dict[str, str],
                     foot_length: dict[str, float]) -> dict[str, np.ndarray]:
    """Per frame: the lower foot's ankle (foot bone head) and toe heights, and the spine bone's
    angle from +Z. `names`: our bone names → the armature's. The toe is the head plus the bone's
    direction times its length in the scene: FBX keeps heads and bone axes but not tails (an
    importer guesses a leaf bone's length)."""
    heads = np.stack([pose[names[b] + ":head"][:, 2] for b in FEET], axis=1)
    tails = []
    for b in FEET:
        h, t = pose[names[b] + ":head"], pose[names[b] + ":tail"]
        d = (t - h) / np.linalg.norm(t - h, axis=1, keepdims=True)
        tails.append((h + d * foot_length[b])[:, 2])
    tails = np.stack(tails, axis=1)
    lower = np.argmin(np.minimum(heads, tails), axis=1)  # the stance foot: the lower one
    rows = np.arange(len(lower))
    spine = pose[names["spine"] + ":tail"] - pose[names["spine"] + ":head"]
    angle = np.degrees(np.arccos(spine[:, 2] / np.linalg.norm(spine, axis=1)))
    return {"ankle": heads[rows, lower], "toe": tails[rows, lower], "spine_deg": angle}


def _check_upright(fig: dict[str, np.ndarray], trunk: np.ndarray, label: str) -> None:
    toe, ankle, spine = np.median(fig["toe"]), np.median(fig["ankle"]), fig["spine_deg"]
    standing = np.median(spine[list(STANDING)])
    off = np.abs(spine - trunk[: len(spine)])
    print(f"\n{label}: stance foot median toe z {100 * toe:.1f} cm, ankle (foot bone head) z "
          f"{100 * ankle:.1f} cm, lowest toe {100 * fig['toe'].min():+.1f} cm; spine from +Z median "
          f"{np.median(spine):.1f} deg, standing frames {standing:.1f} deg; vs the TRC's trunk max "
          f"{off.max():.3f} deg")
    # Feet on the floor: the stance foot's lowest bone end (the toe; the bone's head is the ankle,
    # some 10 cm up by anatomy) at z = 0 within 5 cm, never far below it.
    assert abs(toe) < 0.05 and fig["toe"].min() > -0.03
    assert 0.0 < ankle < 0.2
    # Upright: the spine within 15 deg of +Z while the subject stands, and on every frame at the
    # angle the levelled TRC gives the same two points.
    assert standing < 15.0
    assert off.max() < 0.5


# --- the scene --------------------------------------------------------------------------------------

def test_world_matrix_is_stored_on_the_collection_and_armature(built) -> None:
    coll, arm = built.built["collection"], built.built["armature"]
    for holder in (coll, arm):
        np.testing.assert_allclose(camera.stored_world(holder), built.W, atol=1e-6)
        assert len(holder[camera.WORLD_PROPERTY]) == 16
    assert arm["hp3d_world_level"] == "run.json"
    np.testing.assert_allclose(built.W, world_frame.world_from_camera(built.result.record,
                                                                      built.result.markers_camera))
    assert np.abs(np.array(arm.matrix_world) - np.eye(4)).max() == 0  # the data moved, not the object


def test_armature_stands_upright_on_the_floor(built) -> None:
    arm = built.built["armature"]
    start, end = built.built["frames"]
    frames = list(range(start, end + 1))
    fig = _upright_figures(_pose(arm, frames), {b: b for b in ("spine", *FEET)}, built.feet)
    _check_upright(fig, built.trunk, "scene armature")
    # At rest the bones stand upright too: the spine along +Z, the legs along -Z, facing -Y.
    def rest(name: str) -> np.ndarray:
        bone = arm.data.bones[name]
        v = np.array(bone.tail_local - bone.head_local)
        return v / np.linalg.norm(v)

    np.testing.assert_allclose(rest("spine"), [0, 0, 1], atol=1e-6)
    np.testing.assert_allclose(rest("shin.L"), [0, 0, -1], atol=1e-6)
    assert rest("foot.L")[1] < -0.5 and rest("upper_arm.L")[0] > 0.99


def test_camera_projects_every_joint_as_before(built) -> None:
    """Every joint through the levelled scene's camera, against (a) the engine's intrinsics and (b)
    the camera-frame scene of before (the camera at the origin looking down +Y, joints turned Z up
    by engine.coords): the same pixels."""
    scene = bpy.context.scene
    res, cam = built.result, built.built["camera"]
    assert scene.camera == cam
    k = res.intrinsics
    old_coll = bpy.data.collections.new("camera frame")
    scene.collection.children.link(old_coll)
    old = camera.build_camera("old", res.intrinsics, old_coll, None, scene)  # default: camera frame
    camera.use_camera(scene, cam)
    bpy.context.view_layer.update()
    vs_k, vs_old = [], []
    for t in range(0, res.markers_camera.shape[0], 3):
        m = res.markers_camera[t]
        m = m[np.isfinite(m).all(axis=1)]
        new = camera_pixels(scene, cam, world_frame.transform_points(built.W, m))
        engine = m[:, :2] / m[:, 2:] * [k["fx"], k["fy"]] + [k["cx"], k["cy"]]
        before = camera_pixels(scene, old, coords.camera_to_blender(m))
        vs_k.append(np.abs(new - engine).max())
        vs_old.append(np.abs(new - before).max())
    print(f"\nprojection of {len(vs_k)} frames x 33 joints: vs the intrinsics max {max(vs_k):.4f} px, "
          f"vs the camera-frame scene max {max(vs_old):.4f} px")
    assert max(vs_k) < 1.0 and max(vs_old) < 1.0
    # Placed, not just pointed: the camera is where the engine frame's origin lands, above the floor.
    np.testing.assert_allclose(np.array(cam.matrix_world.translation), built.W[:3, 3], atol=1e-5)
    assert cam.matrix_world.translation.z > 0.5
    data = cam.data
    assert data.show_background_images and data.background_images[0].clip is not None
    bpy.data.objects.remove(old)
    bpy.data.collections.remove(old_coll)


def test_a_result_without_a_level_record_is_levelled_from_its_markers(built, tmp_path: Path) -> None:
    folder = tmp_path / built.folder.name
    shutil.copytree(built.folder, folder)
    record = json.loads((folder / "run.json").read_text())
    del record["biomechanics"]["level"]
    (folder / "run.json").write_text(json.dumps(record))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    out = build.build_scene(build.load_result(folder), bpy.context.scene)
    arm = out["armature"]
    assert arm["hp3d_world_level"] == "estimated" and out["world"].level_source == "estimated"
    # The same leg-based vertical as the engine's "estimated" level: the same world, to a floor
    # taken from the heels and toes (not the augmented markers).
    np.testing.assert_allclose(out["world"].matrix[:3, :3], built.W[:3, :3], atol=1e-5)
    assert abs(out["world"].matrix[2, 3] - built.W[2, 3]) < 0.05


# --- exports --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def exported(built, tmp_path_factory) -> SimpleNamespace:
    """Every FBX preset and the BVH of the levelled armature."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    out = build.build_scene(build.load_result(built.folder), bpy.context.scene)
    arm = out["armature"]
    tmp = tmp_path_factory.mktemp("world_export")
    files = {p: export.export_fbx(tmp / f"{p}.fbx", arm, preset=p) for p in export.FBX_PRESETS}
    files["bvh"] = export.export_bvh(tmp / "anim.bvh", arm)
    scene = bpy.context.scene
    return SimpleNamespace(files=files, frames=out["frames"], fps=(scene.render.fps, scene.render.fps_base))


def _fresh(exported) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.render.fps, bpy.context.scene.render.fps_base = exported.fps


@pytest.mark.parametrize("preset", ["unity", "unreal", "mixamo"])
def test_fbx_comes_back_upright(built, exported, preset: str) -> None:
    """A plain import (the importer's defaults: the file's own axes and units) stands upright."""
    _fresh(exported)
    export.ensure_fbx_addon()
    assert bpy.ops.import_scene.fbx(filepath=str(exported.files[preset])) == {"FINISHED"}
    (arm,) = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    action = arm.animation_data.action
    first = int(action.frame_range[0])
    n = exported.frames[1] - exported.frames[0] + 1
    names = {b: (export.MIXAMO_NAMES[b] if preset == "mixamo" else b) for b in ("spine", *FEET)}
    fig = _upright_figures(_pose(arm, range(first, first + n)), names, built.feet)
    _check_upright(fig, built.trunk, f"FBX {preset}")


def test_bvh_comes_back_upright(built, exported) -> None:
    """The BVH holds Blender's Z-up axes (scene/export.py): imported as such, it stands upright."""
    _fresh(exported)
    export.ensure_bvh_addon()
    start, end = exported.frames
    assert bpy.ops.import_anim.bvh(filepath=str(exported.files["bvh"]), global_scale=1.0, frame_start=start,
                                  use_fps_scale=False, update_scene_duration=True, rotate_mode="NATIVE",
                                  axis_forward="Y", axis_up="Z") == {"FINISHED"}
    (arm,) = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    fig = _upright_figures(_pose(arm, range(start, end + 1)), {b: b for b in ("spine", *FEET)}, built.feet)
    _check_upright(fig, built.trunk, "BVH")
