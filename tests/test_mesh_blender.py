"""The body mesh in Blender: a --mesh run's npz built as Anny's rig with the mesh skinned to it
(scene/body_mesh.py) reproduces the fitted vertices on every frame and rides along with the HP3D
armature in build_scene; FBX export carries the skinned, animated mesh (re-imported and compared);
and the SAM 3D Body importer (scene/sam3d_import.py) places our npz and a synthetic SAM 3D Body
result — two people over three images, Y/Z-flipped, root-relative — where their camera frame says,
levelled and grounded."""

from __future__ import annotations

import importlib
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
from conftest import load_headless
from mesh_support import N_FRAMES, mesh_run

bpy = pytest.importorskip("bpy")



headless = load_headless()
headless.load_package()
build = importlib.import_module("humanpose3d.scene.build")
export = importlib.import_module("humanpose3d.scene.export")
scene_mesh = importlib.import_module("humanpose3d.scene.body_mesh")
sam3d_import = importlib.import_module("humanpose3d.scene.sam3d_import")
coords = importlib.import_module("humanpose3d.engine.coords")
world_frame = importlib.import_module("humanpose3d.engine.world_frame")


@pytest.fixture(autouse=True, scope="module")
def _clean_blender():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield
    bpy.ops.wm.read_factory_settings(use_empty=True)


@pytest.fixture(scope="module")
def run_dir(cam01, tmp_path_factory) -> Path:
    result, _ = mesh_run(cam01, tmp_path_factory)
    return result.out_dir


@pytest.fixture(scope="module")
def npz(run_dir) -> dict:
    return scene_mesh.load_mesh_npz(scene_mesh.find_mesh_file(run_dir))


def _fitted_world(d: dict, i: int) -> np.ndarray:
    """Frame i's fitted vertices in Blender world: camera frame (pred + cam_t), Z up (the SAM 3D
    Body importer's frame, before its grounding Empty)."""
    return coords.camera_to_blender(d["pred_vertices"][i] + d["pred_cam_t"][i])


def _scene_world(run_dir: Path) -> np.ndarray:
    """build_scene's world (engine/world_frame.py: the result's levelled world)."""
    res = build.load_result(run_dir)
    return world_frame.world_from_camera(res.record, res.markers_camera)


def _fitted_scene(d: dict, i: int, W: np.ndarray) -> np.ndarray:
    """Frame i's fitted vertices in build_scene's world."""
    return world_frame.transform_points(W, d["pred_vertices"][i] + d["pred_cam_t"][i])


def test_scene_builds_the_skinned_body_with_the_armature(run_dir, npz) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    built = build.build_scene(build.load_result(run_dir), bpy.context.scene)
    body = built["body"]
    mesh, rig = body["mesh"], body["armature"]
    assert mesh.parent == rig and mesh.modifiers["Armature"].object == rig
    assert len(rig.data.bones) == 104 and len(mesh.data.vertices) == len(npz["anny_rest_vertices"])
    assert len(mesh.vertex_groups) > 90 and mesh.data.materials[0].name == "HP3D_body"
    assert mesh.users_collection[0] == built["collection"]
    assert built["frames"] == (1, N_FRAMES)
    W = _scene_world(run_dir)
    np.testing.assert_allclose(built["world"].matrix, W)
    for i in (0, 7, N_FRAMES - 1):
        got = scene_mesh.evaluated_vertices(mesh, i + 1)
        np.testing.assert_allclose(got, _fitted_scene(npz, i, W), atol=1e-4)
    # Levelled like the armature: the body stands on the floor (its lowest vertex within a few cm
    # of z = 0 on every frame) and its rest pose is upright (Anny's Z up is the world's).
    lows = [scene_mesh.evaluated_vertices(mesh, i + 1)[:, 2].min() for i in range(N_FRAMES)]
    print(f"\nbody mesh lowest vertex per frame: {min(lows):+.3f} to {max(lows):+.3f} m")
    assert -0.07 < min(lows) and max(lows) < 0.05
    rest = np.array([v.co for v in mesh.data.vertices])
    assert np.ptp(rest[:, 2]) > 1.5 > max(np.ptp(rest[:, 0]), np.ptp(rest[:, 1]))
    # The body and the HP3D armature follow the same person: its pelvis bone sits between the mesh's hips.
    bpy.context.scene.frame_set(5)
    arm = built["armature"]
    pelvis = np.array(arm.matrix_world @ arm.pose.bones["pelvis"].head)
    hips = world_frame.transform_points(W, npz["pred_keypoints_3d"][4, 9:11].mean(0) + npz["pred_cam_t"][4])
    assert np.linalg.norm(pelvis - hips) < 0.06
    # Importing the result again replaces the body instead of adding a second one.
    build.build_scene(build.load_result(run_dir), bpy.context.scene)
    assert sum(o.name.startswith("HP3D_cam01_body") for o in bpy.data.objects) == 2


def test_fbx_export_carries_the_skinned_mesh(run_dir, npz, tmp_path) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    built = build.build_scene(build.load_result(run_dir), bpy.context.scene)
    fps = bpy.context.scene.render.fps
    body = built["body"]
    path = export.export_fbx(tmp_path / "body.fbx", built["armature"], (body["armature"], body["mesh"]))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    export.ensure_fbx_addon()
    bpy.context.scene.render.fps = fps
    bpy.ops.import_scene.fbx(filepath=str(path))
    meshes = [o for o in bpy.data.objects if o.type == "MESH"]
    assert len(meshes) == 1 and len(meshes[0].data.vertices) == len(npz["anny_rest_vertices"])
    mesh = meshes[0]
    assert mesh.parent is not None and mesh.parent.type == "ARMATURE" and len(mesh.parent.data.bones) == 104
    assert len(mesh.vertex_groups) > 90 and any(m.type == "ARMATURE" for m in mesh.modifiers)
    # Blender's FBX importer starts the animation one frame later than it was exported.
    offset = _first_key(mesh.parent) - 1
    W = _scene_world(run_dir)
    for i in (0, 9):
        got = scene_mesh.evaluated_vertices(mesh, i + 1 + offset)
        np.testing.assert_allclose(got, _fitted_scene(npz, i, W), atol=1e-4)


def _first_key(obj) -> int:
    from humanpose3d.scene import keyframes

    fcurves = keyframes.fcurve_collection(obj)
    return int(min(fc.keyframe_points[0].co[0] for fc in fcurves))


def test_our_npz_imports_levelled_and_grounded(run_dir, npz) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    imported = sam3d_import.import_sam3d(scene_mesh.find_mesh_file(run_dir))
    (obj,) = imported["meshes"]
    root = imported["root"]
    assert obj.parent == root and imported["frames"] == (1, N_FRAMES)
    assert len(obj.data.shape_keys.key_blocks) == N_FRAMES + 1
    M = np.array(root.matrix_world)
    lows = []
    for i in (0, 5, N_FRAMES - 1):
        got = scene_mesh.evaluated_vertices(obj, i + 1)
        np.testing.assert_allclose(got, _fitted_world(npz, i) @ M[:3, :3].T + M[:3, 3], atol=1e-4)
        lows.append(got[:, 2].min())
    assert min(lows) >= -1e-4  # grounded: nothing below the floor ...
    first = [scene_mesh.evaluated_vertices(obj, i + 1)[:, 2].min() for i in range(N_FRAMES)]
    assert min(first) == pytest.approx(0.0, abs=1e-4)  # ... and the lowest frame stands on it
    # The camera came with it (focal length and image size are in our file), under the same Empty.
    cam = imported["camera"]
    assert cam is not None and cam.parent == root
    assert bpy.context.scene.render.resolution_x == int(npz["image_size"][0])


def _box(height: float = 1.7) -> tuple[np.ndarray, np.ndarray]:
    """A 0.4 x 0.3 x height box, centred, as an upright body would be in SAM 3D Body's model frame
    (Y up), then flipped into its output convention (camera axes)."""
    x, y, z = 0.2, height / 2, 0.15
    corners = np.array([[sx * x, sy * y, sz * z] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
    faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                      [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    return coords.flip_yz(corners), faces


def test_sam3d_body_result_imports_people_per_frame(tmp_path) -> None:
    """Two upright people seen by a camera pitched 20° down, over three images, in SAM 3D Body's
    per-image lists of per-person dicts (pickled, faces beside them, as its demo keeps them)."""
    verts, faces = _box()
    pitch = math.radians(20)  # the camera looks down: bodies lean back in its frame
    c, s = math.cos(pitch), math.sin(pitch)
    R = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])  # world (camera upright) → pitched camera
    frames = []
    for i in range(3):
        people = []
        for x in (-0.8, 0.9):
            t = R @ np.array([x, 0.3, 5.0 + 0.1 * i])
            people.append({"pred_vertices": (verts @ R.T).astype(np.float32),
                           "pred_cam_t": t.astype(np.float32), "focal_length": np.float32(1200.0)})
        frames.append(people)
    path = tmp_path / "sam3d_outputs.pkl"
    with open(path, "wb") as f:
        pickle.dump({"faces": faces, "outputs": frames}, f)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    imported = sam3d_import.import_sam3d(path)
    assert len(imported["meshes"]) == 2 and imported["frames"] == (1, 3)
    root = np.array(imported["root"].matrix_world)
    for obj, x in zip(imported["meshes"], (-0.8, 0.9)):
        assert len(obj.data.polygons) == len(faces)
        for i in range(3):
            got = scene_mesh.evaluated_vertices(obj, i + 1)
            cam = frames[i][0 if x < 0 else 1]
            want = coords.camera_to_blender(cam["pred_vertices"] + cam["pred_cam_t"])
            np.testing.assert_allclose(got, want @ root[:3, :3].T + root[:3, 3], atol=1e-5)
            # Levelled and grounded: the box stands upright (height along Z) with its base on z = 0.
            assert np.ptp(got[:, 2]) == pytest.approx(1.7, abs=1e-3)
            assert got[:, 2].min() == pytest.approx(0.0, abs=1e-5)
    # One image, no faces: a point mesh, and no animation.
    single = tmp_path / "one.npz"
    np.savez(single, pred_vertices=verts, pred_cam_t=np.array([0, 0, 3.0]))
    (obj,) = sam3d_import.import_sam3d(single, ground=False)["meshes"]
    assert len(obj.data.vertices) == 8 and len(obj.data.polygons) == 0 and obj.data.shape_keys is None
    np.testing.assert_allclose(scene_mesh.evaluated_vertices(obj, 1),
                               coords.camera_to_blender(verts + [0, 0, 3.0]), atol=1e-6)


def test_operator_and_headless_import(tmp_path, run_dir) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    headless.load_package().register()
    try:
        res = bpy.ops.humanpose3d.import_sam3d(filepath=str(scene_mesh.find_mesh_file(run_dir)))
        assert res == {"FINISHED"}
        assert any(o.name == "SAM3D_cam01_mesh" for o in bpy.data.objects)
        assert bpy.context.scene.hp3d.mesh is False  # the panel's toggle, off by default
    finally:
        headless.load_package().unregister()
    blend = tmp_path / "sam.blend"
    code = headless.main(["headless.py", "--", "--import-sam3d", str(scene_mesh.find_mesh_file(run_dir)),
                          "--blend", str(blend)])
    assert code == 0 and blend.is_file()
