"""A contact sheet of the retarget: the demo (Pose2Sim cam01) on our armature in the middle, on a
Mixamo-named A-pose rig with other proportions (1.60 m) on the left and on a generated Rigify rig on the
right (tests/retarget_rigs.py), at 4 frames, rendered with Workbench (each armature dressed in
SCAIL's cylinders, scene/scail_rig.py, since bones do not render) from the front, orthographic.

    .venv/bin/python scripts/contact_sheet.py [--result OUT/cam01] [--out docs/retarget_contact_sheet.png]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
TILE = (440, 300)


def _modules():
    spec = importlib.util.spec_from_file_location("_hp3d_headless", ROOT / "headless.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.load_package()
    return [importlib.import_module(f"humanpose3d.scene.{n}") for n in ("build", "retarget", "scail_rig")]


def _demo(tmp: Path) -> Path:
    video = Path(importlib.util.find_spec("Pose2Sim").origin).parent / "Demo_SinglePerson/videos/cam01.mp4"
    subprocess.run([sys.executable, "-m", "engine", "run", str(video), "--height", "1.72", "--out", str(tmp),
                    "--no-angles", "--no-plots", "--quiet"], cwd=ROOT, check=True)
    return tmp / "cam01"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--result", type=Path)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "retarget_contact_sheet.png")
    args = ap.parse_args()
    import bpy
    import retarget_rigs as rigs

    build, retarget, scail_rig = _modules()
    with tempfile.TemporaryDirectory(prefix="hp3d-sheet-") as tmp:
        tmp = Path(tmp)
        folder = args.result or _demo(tmp)
        bpy.ops.wm.read_factory_settings(use_empty=True)
        scene = bpy.context.scene
        built = build.build_scene(build.load_result(folder), scene, with_camera=False)
        ours = built["armature"]
        rigify = rigs.rigify_rig("Rigify")
        rigify.location.x = 1.3
        mixamo = rigs.mixamo_rig("Mixamo", location=(-1.2, 0.0, 0.0))
        bpy.context.view_layer.update()
        for obj in (rigify, mixamo):
            retarget.retarget(ours, obj)
        for arm in (ours, rigify, mixamo):
            names = [b.name for b in arm.data.bones]
            mapping = scail_rig.resolve_preset(names, scail_rig.detect_preset(names))
            scail_rig.build_rig(arm, mapping, scene.collection, radius=0.03)
            arm.hide_render = True
        cam = bpy.data.objects.new("SheetCamera", bpy.data.cameras.new("SheetCamera"))
        scene.collection.objects.link(cam)
        cam.data.type = "ORTHO"
        cam.data.ortho_scale = 4.6
        cam.location = (0.1, -8.0, 1.05)
        cam.rotation_euler = (np.pi / 2, 0, 0)
        scene.camera = cam
        scene.render.engine = "BLENDER_WORKBENCH"
        scene.display.shading.light = "STUDIO"
        scene.display.shading.color_type = "MATERIAL"
        scene.render.resolution_x, scene.render.resolution_y = TILE
        scene.render.resolution_percentage = 100
        scene.render.image_settings.file_format = "PNG"
        world = bpy.data.worlds.new("Sheet")
        world.color = (0.92, 0.92, 0.92)
        scene.world = world
        start, end = built["frames"]
        frames = np.linspace(start, end, 6).round().astype(int)[1:5]
        tiles = []
        for f in frames:
            scene.frame_set(int(f))
            path = tmp / f"tile_{f}.png"
            scene.render.filepath = str(path)
            bpy.ops.render.render(write_still=True)
            img = bpy.data.images.load(str(path))
            px = np.empty(len(img.pixels), np.float32)
            img.pixels.foreach_get(px)
            tiles.append(px.reshape(TILE[1], TILE[0], 4))
            bpy.data.images.remove(img)
        sheet = np.concatenate(tiles, axis=1)
        out = bpy.data.images.new("sheet", sheet.shape[1], sheet.shape[0], alpha=False)
        out.pixels.foreach_set(sheet.ravel())
        args.out.parent.mkdir(parents=True, exist_ok=True)
        settings = scene.render.image_settings
        settings.color_mode, settings.compression = "RGB", 100
        out.save_render(str(args.out.resolve()), scene=scene)
        print(f"{args.out} ({args.out.stat().st_size // 1024} KB): frames {', '.join(map(str, frames))}")


if __name__ == "__main__":
    main()
