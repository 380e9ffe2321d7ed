"""The body mesh in Blender two ways, on a --mesh run's <stem>_mesh.npz: Anny's rig with the mesh
skinned to it (scene/body_mesh.py: what build_scene uses) against a per-frame vertex cache (one shape key a
frame: what scene/sam3d_import.py must use for results without a rig). For each: build time, time
to evaluate a frame, .blend and FBX size, and whether the FBX, re-imported, still plays the fitted
vertices (max error over a few frames, after the importer's one-frame shift).

    .venv/bin/python benchmarks/mesh_blender.py [--npz OUT/<stem>/mesh/<stem>_mesh.npz] [--frames 100]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _package():
    spec = importlib.util.spec_from_file_location("_hp3d_headless", ROOT / "headless.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.load_package()
    return {n: importlib.import_module(f"humanpose3d.{n}") for n in
            ("scene.body_mesh", "scene.sam3d_import", "scene.export", "scene.keyframes", "engine.coords")}


def demo_npz(frames: int, out: Path) -> Path:
    video = Path(importlib.util.find_spec("Pose2Sim").origin).parent / "Demo_SinglePerson/videos/cam01.mp4"
    subprocess.run([sys.executable, "-m", "engine", "run", str(video), "--height", "1.72", "--out", str(out),
                    "--frames", f"0:{frames}", "--mesh", "--no-angles", "--quiet"], cwd=ROOT, check=True)
    return out / "cam01" / "mesh" / "cam01_mesh.npz"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--npz", type=Path)
    ap.add_argument("--frames", type=int, default=100, help="frames of cam01 when no --npz (default 100)")
    args = ap.parse_args()
    import bpy

    m = _package()
    mesh, sam, export, keyframes, coords = (m["scene.body_mesh"], m["scene.sam3d_import"], m["scene.export"],
                                            m["scene.keyframes"], m["engine.coords"])
    with tempfile.TemporaryDirectory(prefix="hp3d-mesh-blender-") as tmp:
        tmp = Path(tmp)
        path = args.npz or demo_npz(args.frames, tmp / "run")
        d = mesh.load_mesh_npz(path)
        n = int(d["valid"].sum())
        print(f"{n} frames, {d['pred_vertices'].shape[1]} vertices ({path})")
        for how in ("rig", "shape keys"):
            bpy.ops.wm.read_factory_settings(use_empty=True)
            scene = bpy.context.scene
            scene.render.fps = int(round(float(d["fps"])))
            t = time.perf_counter()
            if how == "rig":
                coll = bpy.data.collections.new("bench")
                scene.collection.children.link(coll)
                built = mesh.build_body(d, "body", coll)
                obj, rig, extra = built["mesh"], built["armature"], (built["mesh"],)
            else:
                obj = sam.import_sam3d(path, ground=False, with_camera=False)["meshes"][0]
                rig, extra = obj, (obj,)  # export_fbx takes the mesh alone through `extra`
            build_s = time.perf_counter() - t
            scene.frame_start, scene.frame_end = 1, int(d["frame_index"][-1]) + 1
            t = time.perf_counter()
            for f in range(1, 11):
                mesh.evaluated_vertices(obj, f)
            eval_ms = (time.perf_counter() - t) * 100
            blend = tmp / f"{how}.blend"
            bpy.ops.wm.save_as_mainfile(filepath=str(blend), check_existing=False)
            fbx = tmp / f"{how}.fbx"
            t = time.perf_counter()
            export.export_fbx(fbx, rig, extra)
            fbx_s = time.perf_counter() - t
            sizes = f".blend {blend.stat().st_size / 1e6:.1f} MB, FBX {fbx.stat().st_size / 1e6:.1f} MB"
            print(f"{how:10s}: build {build_s:.2f} s, evaluate {eval_ms:.0f} ms/frame, {sizes} in "
                  f"{fbx_s:.2f} s; re-imported FBX: {_replay(bpy, mesh, keyframes, coords, d, fbx)}")


def _replay(bpy, mesh, keyframes, coords, d, fbx: Path) -> str:
    """What the FBX gives back: its mesh's vertices on a few frames against the fit."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.render.fps = int(round(float(d["fps"])))
    bpy.ops.import_scene.fbx(filepath=str(fbx))
    objs = [o for o in bpy.data.objects if o.type == "MESH"]
    if not objs:
        return "no mesh"
    obj = objs[0]
    animated = obj.parent if obj.parent is not None and obj.parent.animation_data else None
    keys = obj.data.shape_keys
    if animated is None and (keys is None or keys.animation_data is None):
        return f"a static mesh ({0 if keys is None else len(keys.key_blocks)} shape keys, not animated)"
    owner = animated or keys
    first = min(fc.keyframe_points[0].co[0] for fc in keyframes.fcurve_collection(owner))
    offset = int(first) - int(d["frame_index"][0]) - 1
    errs = []
    for i in np.flatnonzero(d["valid"])[:: max(1, int(d["valid"].sum()) // 4)]:
        got = mesh.evaluated_vertices(obj, int(d["frame_index"][i]) + 1 + offset)
        errs.append(np.abs(got - coords.camera_to_blender(d["pred_vertices"][i] + d["pred_cam_t"][i])).max())
    return f"plays the fit to {1000 * max(errs):.3f} mm"


if __name__ == "__main__":
    main()
