"""Issue #8's fault matrix, Blender side (runs on bpy 5.0 and, with `make test-blender42`, 4.2 LTS):
importing a result into a scene or .blend that already holds our objects replaces them rather than
adding copies; unicode and spaces in every path; and cancelling a run from Blender (the Cancel
button, and Blender closing while a run is live) leaves nothing behind."""

from __future__ import annotations

import importlib
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import demo_video

bpy = pytest.importorskip("bpy")

from test_addon_job import modal_child  # noqa: E402  (needs bpy first)

HEIGHT_M = 1.72




@pytest.fixture(scope="module")
def unicode_run(addon, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The Run operator (background mode: in-process) on frames 0:10 of a copy of the demo whose
    folder, name and output folder all hold spaces and non-ASCII characters."""
    base = tmp_path_factory.mktemp("addon_faults")
    folder = base / "vidéos de l'été 日本"
    folder.mkdir()
    video = folder / "prise n° 1 — ñandú 動画.mp4"
    shutil.copy(demo_video(), video)
    props = bpy.context.scene.hp3d
    props.video_path, props.height_m = str(video), HEIGHT_M
    props.output_dir = str(base / "sortie résultats ü")
    props.frame_start, props.frame_stop = 0, 10
    assert bpy.ops.humanpose3d.run() == {"FINISHED"}
    result = Path(props.result_dir)
    assert result == base / "sortie résultats ü" / video.stem and (result / "run.json").is_file()
    return SimpleNamespace(base=base, video=video, result=result, stem=video.stem)


def _ours() -> dict[str, list[str]]:
    """Every datablock an import makes, by kind (names sorted)."""
    return {
        "objects": sorted(o.name for o in bpy.data.objects if o.name.startswith("HP3D_")),
        "collections": sorted(c.name for c in bpy.data.collections if c.name.startswith("HP3D ")),
        "armatures": sorted(a.name for a in bpy.data.armatures),
        "actions": sorted(a.name for a in bpy.data.actions),
        "cameras": sorted(c.name for c in bpy.data.cameras),
    }


def _tails(arm, frame: int) -> np.ndarray:
    bpy.context.scene.frame_set(frame)
    return np.array([np.array(arm.matrix_world @ pb.tail) for pb in arm.pose.bones])


def test_reimport_in_the_same_scene_replaces(unicode_run) -> None:
    before = _ours()
    assert len(before["objects"]) == 2 and len(before["collections"]) == 1, before  # armature, camera
    arm = bpy.context.view_layer.objects.active
    want = _tails(arm, 5)
    for _ in range(2):
        assert bpy.ops.humanpose3d.import_result(directory=str(unicode_run.result)) == {"FINISHED"}
        assert _ours() == before
    assert bpy.data.objects[arm.name] == arm
    np.testing.assert_allclose(_tails(arm, 5), want, atol=1e-6)


def test_reimport_into_a_saved_blend_replaces_and_keeps_links(unicode_run) -> None:
    """Save the scene as a .blend (unicode path), open it, import the same result: still one of
    each of our objects, and a constraint someone added on the armature still points at it."""
    arm_name = next(o.name for o in bpy.data.objects if o.type == "ARMATURE")
    follower = bpy.data.objects.new("follower", None)
    bpy.context.scene.collection.objects.link(follower)
    con = follower.constraints.new("COPY_LOCATION")
    con.target, con.subtarget = bpy.data.objects[arm_name], "head"
    blend = unicode_run.base / "scène ü.blend"
    assert bpy.ops.wm.save_as_mainfile(filepath=str(blend), check_existing=False) == {"FINISHED"}
    bpy.ops.wm.read_factory_settings(use_empty=True)
    assert bpy.ops.wm.open_mainfile(filepath=str(blend)) == {"FINISHED"}
    before = _ours()
    arm = bpy.data.objects[arm_name]
    want = _tails(arm, 7)
    assert bpy.ops.humanpose3d.import_result(directory=str(unicode_run.result)) == {"FINISHED"}
    assert _ours() == before
    assert bpy.data.objects[arm_name] == arm
    np.testing.assert_allclose(_tails(arm, 7), want, atol=1e-6)
    con = bpy.data.objects["follower"].constraints[0]
    assert con.target == arm and con.subtarget == "head"
    bpy.context.scene.frame_set(7)
    bpy.context.view_layer.update()
    head = np.array(arm.matrix_world @ arm.pose.bones["head"].head)
    followed = np.array(bpy.data.objects["follower"].matrix_world.translation)
    np.testing.assert_allclose(followed, head, atol=1e-5)


def test_a_different_result_is_added_beside(unicode_run, tmp_path: Path) -> None:
    """Only the same result folder is replaced: another one (here, a copy) gets its own objects."""
    copy = tmp_path / unicode_run.stem
    shutil.copytree(unicode_run.result, copy)
    before = _ours()
    assert bpy.ops.humanpose3d.import_result(directory=str(copy)) == {"FINISHED"}
    after = _ours()
    assert len(after["objects"]) == len(before["objects"]) + 2
    assert len(after["collections"]) == len(before["collections"]) + 1


# --- cancel from Blender --------------------------------------------------------------------------

def _start_modal(tmp_path: Path):
    # The whole video: seconds of pose to interrupt.
    run, op, props, job = modal_child(bpy, demo_video(), tmp_path, (0, 0))
    timer = SimpleNamespace(type="TIMER", value="NOTHING")
    deadline = time.monotonic() + 60
    while props.progress <= 0.05:  # detection has begun
        assert op.modal(bpy.context, timer) == {"PASS_THROUGH"}, op.reports
        assert time.monotonic() < deadline, list(job.stderr_tail)
        time.sleep(0.05)
    return run, op, job, timer


def test_cancel_button_stops_the_run_and_leaves_nothing(addon, tmp_path: Path) -> None:
    run, op, job, timer = _start_modal(tmp_path)
    before = set(bpy.data.objects.keys())
    assert bpy.ops.humanpose3d.cancel() == {"FINISHED"}  # the panel's Cancel button
    assert bpy.context.scene.hp3d.stage == "cancelling"
    deadline = time.monotonic() + 30
    while (state := op.modal(bpy.context, timer)) == {"PASS_THROUGH"}:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert state == {"CANCELLED"} and job.returncode == 130
    assert ({"WARNING"}, "cancelled; nothing was written") in op.reports
    assert run.active_run() is None and not bpy.context.scene.hp3d.running
    assert set(bpy.data.objects.keys()) == before
    assert list(tmp_path.iterdir()) == []


def test_blender_closing_mid_run_kills_the_child(addon, tmp_path: Path) -> None:
    """Blender calls the modal operator's cancel() when it quits or loads a file mid-run: the
    child must not outlive it, and the killed run's leftovers (if any) go with the next run."""
    run, op, job, timer = _start_modal(tmp_path)
    op.cancel(bpy.context)
    assert job.proc.poll() is not None, "the engine child outlived Blender"
    assert run.active_run() is None and not bpy.context.scene.hp3d.running
    job.wait(timeout=10)
    assert [p for p in tmp_path.iterdir() if not p.name.startswith(".hp3d-tmp-")] == []
    clean_stale = importlib.import_module("humanpose3d.engine.outputs").clean_stale
    clean_stale(tmp_path)
    assert list(tmp_path.iterdir()) == []
