"""Blender SCAIL render time: 100 frames at 512×896 headless, Workbench and Cycles (target ≤ 60 s).

Builds this add-on's armature from a synthetic walk (benchmarks/scail_render.py's, 1080×1920 FOV-55
source camera) or from a finished engine output folder (--result OUT/<stem>), dresses it in SCAIL's
cylinder rig, and renders the clip with each engine to RGBA PNGs (plus the MP4 once). Prints the
seconds for the render (PNGs included), the MP4 encode, which engine `pick_engine` would choose, and
the mask IoU of every Blender frame against the engine's own SCAIL render of the same poses.

    .venv/bin/python benchmarks/scail_blender.py [--frames 100] [--size 512x896] [--result DIR]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic_result(folder: Path, frames: int) -> Path:
    """An engine-like output folder (markers npz + run.json) of the synthetic walk at 30 fps."""
    walk = _load("_bench_scail_render", ROOT / "benchmarks" / "scail_render.py").synthetic_walk
    from humanpose3d.engine import result
    from humanpose3d.engine.camera import Intrinsics

    k = Intrinsics.from_settings(1080, 1920, 55.0)
    out = folder / "walk"
    out.mkdir(parents=True)
    markers = walk(frames)
    T = len(markers)
    result.write_markers(out / result.core_files("walk")["markers_npz"], markers_33=markers,
                         markers_22=np.full((T, 22, 3), np.nan), pixels=np.full((T, 33, 2), np.nan),
                         visibility=np.zeros((T, 33)), detected=np.ones(T, bool), K=k.K, fps=30.0,
                         first_frame=0, bone_lengths=np.full(12, np.nan), image_size=(1080, 1920),
                         video=Path("walk.mp4"))
    (out / result.RUN_JSON).write_text(json.dumps({"intrinsics": k.to_json()}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--size", default="512x896")
    ap.add_argument("--result", type=Path, help="an engine output folder OUT/<stem> to render instead")
    a = ap.parse_args()
    size = tuple(int(v) for v in a.size.lower().split("x"))
    _load("_hp3d_headless", ROOT / "headless.py").load_package()
    import bpy

    build = importlib.import_module("humanpose3d.scene.build")
    scail_rig = importlib.import_module("humanpose3d.scene.scail_rig")
    scail_render = importlib.import_module("humanpose3d.scene.scail_scene")
    er = importlib.import_module("humanpose3d.engine.capsule_render")
    smpl24 = importlib.import_module("humanpose3d.engine.smpl24")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folder = a.result or synthetic_result(tmp, a.frames)
        bpy.ops.wm.read_factory_settings(use_empty=True)
        result = build.load_result(folder)
        result.markers_camera = result.markers_camera[: a.frames]
        t = time.perf_counter()
        built = build.build_scene(result, bpy.context.scene)
        arm = built["armature"]
        st = scail_render.setup(bpy.context.scene, arm,
                                scail_rig.resolve_preset([b.name for b in arm.data.bones], "HP3D"), size=size)
        setup_s = time.perf_counter() - t
        n = st.scene.frame_end - st.scene.frame_start + 1
        print(f"Blender SCAIL render, {n} frames at {size[0]}x{size[1]} of {folder.name}; "
              f"armature + rig + camera + depth range {setup_s:.2f} s")

        joints = smpl24.mediapipe_to_smpl24(result.markers_camera) * 1000.0
        reference = er.CylinderRenderer(st.intrinsics, er.depth_range(joints))
        for engine in ("WORKBENCH", "CYCLES"):
            scail_render.configure(st.scene, engine)  # warm: shaders, kernels, the first BVH
            st.scene.render.filepath = str(tmp / f"warm_{engine}.png")
            bpy.ops.render.render(write_still=True, scene=st.scene.name)
            t = time.perf_counter()
            res = scail_render.render(st.scene, tmp / engine, result.stem, engine, mp4=False)
            render_s = time.perf_counter() - t
            ious = []
            for i, png in enumerate(res.pngs):
                got = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)[..., 3] > 127
                ref = reference.render(joints[i])[..., 3] > 0
                ious.append((got & ref).sum() / max((got | ref).sum(), 1))
            print(f"  {engine.lower():<10} {render_s:6.1f} s  ({n / render_s:5.1f} frames/s, PNGs included); "
                  f"mask IoU vs engine min {min(ious):.4f} median {np.median(ious):.4f}")
        t = time.perf_counter()
        scail_render.encode_mp4(res.pngs, tmp / "walk.mp4", st.scene)
        print(f"  mp4 encode {time.perf_counter() - t:6.1f} s  (Blender's FFmpeg, H.264)")
        t = time.perf_counter()
        picked = scail_render.pick_engine(st.scene)
        print(f"  pick_engine chooses {picked.lower()} ({time.perf_counter() - t:.1f} s to measure)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
