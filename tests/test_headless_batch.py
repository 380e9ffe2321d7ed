"""headless.py's batch mode: the engine's Ray batch in a child process, then one .blend and one FBX
per finished video, built one at a time in Blender's process (bpy module here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import _package_file, load_headless


@pytest.mark.engine_run
def test_headless_batch_writes_one_blend_and_fbx_per_video(tmp_path: Path, capsys) -> None:
    import bpy

    videos = [_package_file("Pose2Sim", "Demo_SinglePerson", "videos", f"{n}.mp4")
              for n in ("cam01", "cam02")]
    out, blends, fbxs = tmp_path / "out", tmp_path / "blend", tmp_path / "fbx"
    bogus = tmp_path / "notes.mp4"
    bogus.write_text("not a video")
    code = load_headless().main(["blender", "--", "batch", *map(str, videos), str(bogus), "--out", str(out),
                                 "--height", "1.72", "--frames", "0:20", "--quiet", "--workers", "1",
                                 "--blend", str(blends), "--fbx", str(fbxs)])
    assert code == 1  # one input failed; the others still got their scenes
    summary = json.loads((out / "batch.json").read_text())
    status = {Path(r["out_dir"]).name: r["status"] for r in summary["videos"]}
    assert status == {"cam01": "ok", "cam02": "ok", "notes": "failed"}
    assert sorted(p.name for p in blends.iterdir()) == ["cam01.blend", "cam02.blend"]
    assert sorted(p.name for p in fbxs.iterdir()) == ["cam01.fbx", "cam02.fbx"]
    bpy.ops.wm.open_mainfile(filepath=str(blends / "cam02.blend"))
    arms = [o for o in bpy.data.objects if o.type == "ARMATURE"]
    assert [o.name for o in arms] == ["HP3D_cam02"] and arms[0].animation_data.action is not None
    assert bpy.context.scene.frame_start == 1 and bpy.context.scene.frame_end == 20
