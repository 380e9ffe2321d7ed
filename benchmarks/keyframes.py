"""Keyframing speed in Blender: bulk `keyframe_points.add` + `foreach_set` (what scene/keyframes.py
does) against a Python loop of `keyframe_insert`, for a 20-bone armature (quaternions on every
bone plus the root location: 83 F-curves).

    python benchmarks/keyframes.py [--frames 10000] [--bones 20] [--loop-frames 200]

The loop is timed on growing subsets of frames: `keyframe_insert` gets slower per key as a curve
grows (each insert re-handles the curve), so its rate is reported per subset size, and the ratio
at the largest subset. A 10,000-frame loop would take minutes, which is the point.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _load_package():
    """scene/keyframes.py, imported as Blender imports the add-on (headless.load_package)."""
    sys.path.insert(0, str(ROOT))
    from headless import load_package

    load_package()
    from humanpose3d.scene import keyframes

    return keyframes


def _armature(bones: int):
    import bpy

    data = bpy.data.armatures.new("bench")
    obj = bpy.data.objects.new("bench", data)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    parent = None
    for i in range(bones):
        eb = data.edit_bones.new(f"b{i:02d}")
        eb.head, eb.tail = (0, 0, 0.1 * i), (0, 0, 0.1 * i + 0.1)
        eb.parent = parent
        parent = eb
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


def _values(frames: int, bones: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    q = rng.normal(size=(frames, bones, 4))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    return q, rng.normal(size=(frames, 3))


def bulk(obj, keyframes, q: np.ndarray, loc: np.ndarray) -> tuple[float, int]:
    frames = np.arange(1, q.shape[0] + 1, dtype=np.float64)
    t = time.perf_counter()
    keyframes.ensure_action(obj, "bulk")
    fcurves = keyframes.fcurve_collection(obj)
    for i, pb in enumerate(obj.pose.bones):
        keyframes.write_vector(fcurves, f'pose.bones["{pb.name}"].rotation_quaternion', frames,
                               q[:, i], pb.name)
    keyframes.write_vector(fcurves, f'pose.bones["{obj.pose.bones[0].name}"].location', frames, loc)
    return time.perf_counter() - t, q.shape[0] * (q.shape[1] * 4 + 3)


def loop(obj, q: np.ndarray, loc: np.ndarray) -> tuple[float, int]:
    obj.animation_data_clear()
    root = obj.pose.bones[0]
    bones = list(obj.pose.bones)
    t = time.perf_counter()
    for f in range(q.shape[0]):
        for i, pb in enumerate(bones):
            pb.rotation_quaternion = q[f, i]
            pb.keyframe_insert("rotation_quaternion", frame=f + 1, group=pb.name)
        root.location = loc[f]
        root.keyframe_insert("location", frame=f + 1)
    return time.perf_counter() - t, q.shape[0] * (q.shape[1] * 4 + 3)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=10_000)
    p.add_argument("--bones", type=int, default=20)
    p.add_argument("--loop-frames", default="100,200,400,800", metavar="N,N,…",
                   help="frame counts for the keyframe_insert loop (default 100,200,400,800)")
    args = p.parse_args(argv)
    import bpy

    keyframes = _load_package()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    rng = np.random.default_rng(0)
    q, loc = _values(args.frames, args.bones, rng)
    obj = _armature(args.bones)
    for pb in obj.pose.bones:
        pb.rotation_mode = "QUATERNION"

    t_bulk, n_bulk = bulk(obj, keyframes, q, loc)
    fcurves = keyframes.fcurve_collection(obj)
    assert all(len(fc.keyframe_points) == args.frames for fc in fcurves)
    rate_bulk = n_bulk / t_bulk
    print(f"Blender {bpy.app.version_string}, {args.bones} bones, quaternions + root location")
    print(f"foreach_set     : {args.frames:6d} frames, {n_bulk:9d} keys in {t_bulk:7.3f} s = "
          f"{rate_bulk / 1e6:6.2f} M keys/s")
    rate_loop = float("nan")
    for n in sorted({min(int(v), args.frames) for v in args.loop_frames.split(",") if v.strip()}):
        t_loop, n_loop = loop(obj, q[:n], loc[:n])
        rate_loop = n_loop / t_loop
        print(f"keyframe_insert : {n:6d} frames, {n_loop:9d} keys in {t_loop:7.3f} s = "
              f"{rate_loop / 1e3:6.1f} k keys/s")
    print(f"ratio           : {rate_bulk / rate_loop:.0f}x (bulk vs the largest loop)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
