"""A multi-person result (--people all --holistic) in Blender: one armature and one camera per
person, named and coloured by ID, standing apart in one shared world, each with the fingers of
their own hands; the Import operator builds them all."""

from __future__ import annotations

import importlib
import threading

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
from conftest import HEIGHT_M, load_headless  # noqa: E402

load_headless().load_package()
build = importlib.import_module("humanpose3d.scene.build")
keyframes = importlib.import_module("humanpose3d.scene.keyframes")


@pytest.fixture(scope="module")
def people_folder(sports2d_demo, tmp_path_factory):
    from engine.config import RunConfig
    from engine.pipeline import run

    out = tmp_path_factory.mktemp("people") / "out"
    res = run(RunConfig(video=sports2d_demo, height_m=HEIGHT_M, out_dir=out, frames=(118, 130),
                        people="all", angle_plots=False, holistic=True), cancel=threading.Event())
    assert [r.out_dir.name for r in res.people] == ["person_1", "person_2"]
    return res.out_dir


def test_one_armature_and_camera_per_person(addon, people_folder):
    built = build.build_folder(people_folder, bpy.context.scene)
    assert [pid for pid, _ in built["people"]] == [1, 2]
    stem = people_folder.name
    arms = sorted(o.name for o in bpy.data.objects if o.type == "ARMATURE")
    cams = sorted(o.name for o in bpy.data.objects if o.type == "CAMERA")
    assert arms == [f"HP3D_{stem}_person_1", f"HP3D_{stem}_person_2"]
    assert cams == [f"HP3D_{stem}_person_1_camera", f"HP3D_{stem}_person_2_camera"]
    a1, a2 = (bpy.data.objects[n] for n in arms)
    assert a1["hp3d_person"] == 1 and a2["hp3d_person"] == 2
    for arm in (a1, a2):  # each person's own hands: finger bones, keyed
        fingers = [b.name for b in arm.data.bones if b.name.startswith("f_index")]
        assert fingers, f"{arm.name} has no finger bones"
        keyed = {fc.data_path for fc in keyframes.fcurve_collection(arm) if "f_index" in fc.data_path}
        assert keyed, f"{arm.name}'s fingers are not keyed"
    assert tuple(a1.color) != tuple(a2.color)
    bone_colour = tuple(a1.data.bones[0].color.custom.normal)
    assert bone_colour == pytest.approx(build.person_colour(1)[:3], abs=1 / 255)
    # One world for both: the two people stand apart (the man on the shed, the woman below),
    # and their cameras coincide.
    scene = bpy.context.scene
    scene.frame_set(built["frames"][0] + 4)
    bpy.context.view_layer.update()

    def hips(arm):
        return np.array(arm.matrix_world @ arm.pose.bones[0].head)

    assert np.linalg.norm(hips(a1) - hips(a2)) > 0.5
    c1, c2 = (bpy.data.objects[n] for n in cams)
    np.testing.assert_allclose(np.array(c1.matrix_world), np.array(c2.matrix_world), atol=1e-5)


def test_import_operator_builds_everyone(addon, people_folder):
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    assert bpy.ops.humanpose3d.import_result(directory=str(people_folder)) == {"FINISHED"}
    persons = sorted(o.get("hp3d_person") for o in bpy.data.objects if o.type == "ARMATURE")
    assert persons == [1, 2]


def test_headless_imports_everyone(addon, people_folder, tmp_path, capsys):
    """headless.py --import-result of a --people folder: every person's armature in the saved
    .blend; --fbx takes the first person's."""
    headless = load_headless()
    blend, fbx = tmp_path / "people.blend", tmp_path / "first.fbx"
    assert headless.main(["headless.py", "--", "--import-result", str(people_folder), "--blend",
                          str(blend), "--fbx", str(fbx)]) == 0
    stem = people_folder.name
    out = capsys.readouterr().out
    assert f"people: HP3D_{stem}_person_1, HP3D_{stem}_person_2" in out
    assert blend.is_file() and b"HP3D_" + stem.encode() + b"_person_1" in fbx.read_bytes()
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    assert sorted(o.get("hp3d_person") for o in bpy.data.objects if o.type == "ARMATURE") == [1, 2]
