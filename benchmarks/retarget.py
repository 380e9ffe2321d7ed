"""Retargeting figures, side by side: the demo's four cameras (Pose2Sim Demo_SinglePerson cam01-04,
height 1.72 m, 100 frames each) onto (a) a Rigify rig generated from Blender's bundled human metarig,
(b) a Mixamo-named rig with other proportions and an A-pose rest (tests/retarget_rigs.py), (c) Anny's
rig (when the anny package is installed); then 10,000 frames onto a 65-bone rig.

Per target and camera (tests/retarget_rigs.figures): the median distance of the hips, knees, ankles,
shoulders, elbows and wrists from our motion laid on the character's proportions (pos, cm; "by hip"
and "by ht": from our joints simply scaled by the hip-height ratio or by the height ratio, which
keeps every difference of proportion); the median knee/elbow flexion difference (deg, p95 beside
it); planted-foot speed over ours (x); the largest turn of any bone between two frames (deg); the
retarget's time (s); s, the hip-height ratio the root motion is scaled by; the height ratio.

    .venv/bin/python benchmarks/retarget.py [--results DIR] [--frames 10000] [--holistic]

--results: a folder holding finished runs cam01..cam04 (made there with the engine when missing).
--holistic: the runs track the hands too (made in DIR/holistic/), and a second table gives the
fingers per target and camera (tests/retarget_rigs.finger_figures): the target's finger bones
against our armature's (direction, median and p95, and the bend between a finger's bones, deg),
our armature's against the tracked finger segments, and the frames each hand was found in.
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
sys.path.insert(0, str(ROOT / "tests"))
CAMERAS = ("cam01", "cam02", "cam03", "cam04")


def _package():
    spec = importlib.util.spec_from_file_location("_hp3d_headless", ROOT / "headless.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.load_package()
    names = ("build", "retarget", "bone_map", "skeleton")
    return {n: importlib.import_module(f"humanpose3d.scene.{n}") for n in names}


def results(folder: Path, holistic: bool = False) -> dict[str, Path]:
    videos = Path(importlib.util.find_spec("Pose2Sim").origin).parent / "Demo_SinglePerson" / "videos"
    from humanpose3d.engine.result import MARKERS_NPZ  # loaded by _package()

    folder = folder / "holistic" if holistic else folder
    out = {}
    for cam in CAMERAS:
        if not list((folder / cam).glob(f"*{MARKERS_NPZ}")):
            subprocess.run([sys.executable, "-m", "engine", "run", str(videos / f"{cam}.mp4"), "--height",
                            "1.72", "--out", str(folder), "--no-angles", "--no-plots", "--quiet",
                            *(["--holistic"] if holistic else [])], cwd=ROOT, check=True)
        out[cam] = folder / cam
    return out


def source_hands(folder: Path) -> str:
    """"left/right" frames with each hand, from run.json."""
    import json

    hands = json.loads((folder / "run.json").read_text()).get("hands") or {}
    return f"{hands.get('left_frames', 0)}/{hands.get('right_frames', 0)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path)
    ap.add_argument("--frames", type=int, default=10_000)
    ap.add_argument("--holistic", action="store_true", help="track the hands; print the fingers' figures")
    args = ap.parse_args()
    import bpy
    import retarget_rigs as rigs

    m = _package()
    build, retarget, bone_map, skeleton = m["build"], m["retarget"], m["bone_map"], m["skeleton"]
    with tempfile.TemporaryDirectory(prefix="hp3d-retarget-") as tmp:
        runs = results(args.results or Path(tmp), args.holistic)
        bpy.ops.wm.read_factory_settings(use_empty=True)
        chars = {"rigify": rigs.rigify_rig("RigifyChar"), "mixamo": rigs.mixamo_rig("MixamoChar")}
        try:
            importlib.import_module("anny")
            chars["anny"] = rigs.anny_rig("AnnyChar")
        except ImportError:
            print("anny: not installed, left out")
        measure = {k: retarget.detect_map(o)[1] for k, o in chars.items()}
        names = set(chars["rigify"].data.bones.keys())
        measure["rigify"] = bone_map._table_map(names, bone_map._RIGIFY_DEFORM, "ORG-")
        rows, fingers = [], []
        last = None
        for cam, folder in runs.items():
            built = build.build_scene(build.load_result(folder), bpy.context.scene, with_camera=False)
            arm = built["armature"]
            source = retarget.load_source(arm)
            last = (arm, source)
            for kind, obj in chars.items():
                t0 = time.perf_counter()
                rep = retarget.retarget(arm, obj, source=source)
                seconds = time.perf_counter() - t0
                f = rigs.figures(obj, measure[kind], rep, source)
                rows.append((kind, cam, f, seconds, rep["scale"]))
                if args.holistic:
                    prefix = "ORG-" if kind == "rigify" else ""  # Rigify: what follows its FK controls
                    bones = [prefix + rep["map"][s][0] for s in skeleton.FINGER_NAMES]
                    hands = source_hands(folder)
                    fingers.append((kind, cam, rigs.finger_figures(obj, bones, arm, rep, source), hands))
        print(f"\n{'target':8} {'camera':6} {'pos cm':>7} {'by hip':>7} {'by ht':>7} {'flex deg':>9} "
              f"{'p95':>6} {'plant x':>8} {'turn deg':>9} {'s':>6} {'hip r':>6} {'ht r':>6}")
        for kind, cam, f, seconds, scale in rows:
            print(f"{kind:8} {cam:6} {f['pos_cm']:7.2f} {f['pos_abs_cm']:7.2f} {f['pos_height_cm']:7.2f} "
                  f"{f['flex_deg']:9.2f} {f['flex_p95_deg']:6.2f} {f['plant_ratio']:8.2f} "
                  f"{f['max_turn_deg']:9.1f} {seconds:6.2f} {scale:6.3f} {f['height_ratio']:6.3f}")
        print("targets: pos < 3 cm, flex < 3 deg, plant <= 1.2x, turn < 90 deg")
        if fingers:
            print(f"\n{'target':8} {'camera':6} {'hands L/R':>10} {'dir deg':>8} {'p95':>6} {'bend deg':>9} "
                  f"{'ours vs tracked dir':>20} {'bend':>6}")
            for kind, cam, g, hands in fingers:
                print(f"{kind:8} {cam:6} {hands:>10} {g['dir_deg']:8.2f} {g['dir_p95_deg']:6.2f} "
                      f"{g['bend_deg']:9.2f} {g['ours_vs_tracked_deg']:20.2f} "
                      f"{g['ours_bend_vs_tracked_deg']:6.2f}")
        big = rigs.mixamo_rig("Big", location=(0, 6, 0))
        arm, source = last
        T = len(source.frames)
        idx = np.resize(np.concatenate([np.arange(T), np.arange(T)[::-1]]), args.frames)
        src = retarget.Source({k: v[idx] for k, v in source.pts.items()},
                              np.arange(1, args.frames + 1, dtype=float), source.fps, source.planted[idx],
                              source.folder)
        t0 = time.perf_counter()
        rep = retarget.retarget(arm, big, source=src)
        seconds = time.perf_counter() - t0
        print(f"\n{args.frames} frames onto {len(big.data.bones)} bones ({len(rep['solution'].keyed)} "
              f"keyed): {seconds:.2f} s, {rep['keys']} keys (target < 5 s)")


if __name__ == "__main__":
    main()
