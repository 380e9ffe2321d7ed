"""Render SCAIL's pose video in Blender: the cylinder rig (scene/scail_rig.py) seen through a
pinhole camera, RGBA PNGs with alpha as the body mask, plus an MP4 of the colours on black.

The render happens in a scene of its own ("SCAIL"), which holds only the rig and its camera and
shares the source scene's frame range and rate, so the user's render settings stay untouched and
nothing else (meshes, the armature) shows. Constraints reach across scenes: the source armature is
evaluated in the SCAIL scene's depsgraph at that scene's frame.

The look follows engine/capsule_render.py (SCAIL's shading: `colour·(0.3 + 0.7·n_z)·fade` plus a
white `0.5·(n·h)^32·fade` highlight, `fade` falling with depth between the clip's near and far):
- Cycles reproduces it per pixel with an emission shader (one sample at the pixel centre, no AA,
  so the alpha is the same hard mask as the engine's);
- Workbench reproduces the diffuse and the highlight with a generated two-pass matcap (diffuse ×
  material colour + specular) and the depth fade per limb, from drivers on the material colours.
Colours are written as the engine writes them: view transform Raw, no dither. Workbench needs an
OpenGL context; where there is none only Cycles works, which `pick_engine` finds out by trying.

Pixel convention: the engine casts rays through integer pixel positions with the principal point
at (W/2, H/2); Blender samples pixel centres (x + 0.5), so the Blender camera's principal point is
moved by half a pixel to cast the same rays.
"""

from __future__ import annotations

import math
import struct
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np
from mathutils import Matrix, Vector

from ..engine.camera import Intrinsics
from ..engine.capsule_render import LIMB_COLOURS, LIMBS, fit_camera
from ..engine.result import read_record
from . import scail_rig
from .camera import extrinsics_to_world, lens_settings, stored_world

SCENE_NAME = "SCAIL"
MATCAP_NAME = "humanpose3d_scail.exr"
NODE_GROUP = "SCAIL shading"
ENGINES = {"WORKBENCH": "BLENDER_WORKBENCH", "CYCLES": "CYCLES"}
_NEAR_PROP, _FAR_PROP = "hp3d_scail_near", "hp3d_scail_far"
_ZNEAR = 1e-4  # SCAIL's 0.1 mm near plane and depth offset, in metres

# SCAIL-Pose renders portrait 512×896 or landscape 896×512, following the video
# (engine.scail.default_size; repeated here because engine/scail.py imports cv2).
PORTRAIT, LANDSCAPE = (512, 896), (896, 512)


def default_size(width: int, height: int) -> tuple[int, int]:
    return LANDSCAPE if width > height else PORTRAIT


# --- the SCAIL scene --------------------------------------------------------------------------

def ensure_scene(source: bpy.types.Scene, name: str = SCENE_NAME) -> bpy.types.Scene:
    """The render scene, created on first use; frame range and rate follow `source` each call."""
    scene = bpy.data.scenes.get(name) or bpy.data.scenes.new(name)
    scene.frame_start, scene.frame_end = source.frame_start, source.frame_end
    scene.frame_step = source.frame_step
    scene.render.fps, scene.render.fps_base = source.render.fps, source.render.fps_base
    scene.frame_current = source.frame_current
    scene["hp3d_scail_source"] = source.name
    return scene


def place_rig(rig: scail_rig.Rig, scail_scene: bpy.types.Scene, source: bpy.types.Scene | None,
              show_in_source: bool) -> None:
    """Link the rig's collection into the SCAIL scene (rendered) and, for display, the source."""
    if rig.collection.name not in scail_scene.collection.children:
        scail_scene.collection.children.link(rig.collection)
    if source is not None and source != scail_scene:
        linked = rig.collection.name in source.collection.children
        if show_in_source and not linked:
            source.collection.children.link(rig.collection)
        elif not show_in_source and linked:
            source.collection.children.unlink(rig.collection)


# --- camera -----------------------------------------------------------------------------------

def result_intrinsics(armature: bpy.types.Object) -> Intrinsics | None:
    """The engine's camera for an armature this add-on built (its output folder's run.json)."""
    folder = armature.get("hp3d_output")
    if not folder:
        return None
    try:
        k = read_record(folder).get("intrinsics") or {}
        return Intrinsics(float(k["fx"]), float(k["fy"]), float(k["cx"]), float(k["cy"]),
                          int(k["width"]), int(k["height"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def result_camera_matrix(armature: bpy.types.Object) -> np.ndarray:
    """World matrix of the engine's camera for an armature this add-on built: the result's
    world_from_camera (scene/build.py stores it on the armature; an armature built before the
    levelled world has none: the camera frame turned Z up), carried along with the armature."""
    placed = extrinsics_to_world(np.eye(3), np.zeros(3), stored_world(armature))
    return np.array(armature.matrix_world) @ placed


def fov_intrinsics(width: int, height: int, fov_deg: float) -> Intrinsics:
    """FOV across the longer side, principal point at the centre (the engine's and NLF's camera)."""
    return Intrinsics.from_settings(width, height, fov_deg)


def ensure_camera(scene: bpy.types.Scene, k: Intrinsics, follow: bpy.types.Object | None = None,
                  frame_objects: list[bpy.types.Object] | None = None,
                  matrix: np.ndarray | None = None) -> bpy.types.Object:
    """The SCAIL scene's camera with intrinsics `k`. It copies `follow`'s transform (a scene camera,
    animated or not); without one it sits at `matrix` (a 4x4 world matrix: the result's camera,
    result_camera_matrix), else at the origin looking down +Y, unless `frame_objects` asks for a
    front view framing them."""
    name = f"{scene.name} camera"
    obj = bpy.data.objects.get(name)
    if obj is None or obj.type != "CAMERA":
        obj = bpy.data.objects.new(name, bpy.data.cameras.new(name))
    if obj.name not in scene.collection.objects:
        scene.collection.objects.link(obj)
    cam = obj.data
    s = lens_settings(k.fx, k.fy, k.cx + 0.5, k.cy + 0.5, k.width, k.height)  # see module notes
    cam.type = "PERSP"
    cam.sensor_fit, cam.sensor_width, cam.lens = s["sensor_fit"], s["sensor_width"], s["lens"]
    cam.shift_x, cam.shift_y = s["shift_x"], s["shift_y"]
    cam.clip_start, cam.clip_end = 0.01, 200.0
    obj.constraints.clear()
    obj.rotation_mode = "XYZ"
    obj.location, obj.rotation_euler = (0.0, 0.0, 0.0), (math.pi / 2, 0.0, 0.0)
    if follow is not None:
        c = obj.constraints.new("COPY_TRANSFORMS")
        c.target = follow
    elif matrix is not None:
        obj.matrix_world = Matrix(np.asarray(matrix, dtype=np.float64).tolist())
    elif frame_objects:
        obj.location = _front_view(scene, frame_objects, k)
    scene.camera = obj
    r = scene.render
    r.resolution_x, r.resolution_y, r.resolution_percentage = k.width, k.height, 100
    r.pixel_aspect_x, r.pixel_aspect_y = s["pixel_aspect"]
    return obj


def evaluated(scene: bpy.types.Scene, frame: int | None = None) -> bpy.types.Depsgraph:
    """The scene's depsgraph evaluated at `frame` (default: the current one); a scene that is not
    the window's has none until a frame is set."""
    scene.frame_set(scene.frame_current if frame is None else frame)
    return scene.view_layers[0].depsgraph


def _front_view(scene: bpy.types.Scene, objects: list[bpy.types.Object], k: Intrinsics,
                fill: float = 0.8) -> Vector:
    """Camera position on -Y (Blender's front) from which the objects' bounding box at the current
    frame fills `fill` of the frame."""
    dg = evaluated(scene)
    pts = np.array([tuple(o.evaluated_get(dg).matrix_world.translation) for o in objects])
    lo, hi = pts.min(0), pts.max(0)
    centre = 0.5 * (lo + hi)
    half_w, half_h = 0.5 * (hi[0] - lo[0]) + 0.1, 0.5 * (hi[2] - lo[2]) + 0.1
    dist = max(half_w * k.fx / (fill * k.width / 2), half_h * k.fy / (fill * k.height / 2))
    return Vector((centre[0], lo[1] - dist, centre[2]))


# --- look ---------------------------------------------------------------------------------------

def _write_exr(path: Path, channels: dict[str, np.ndarray]) -> None:
    """A minimal uncompressed half-float scanline OpenEXR, channels named as given (Blender reads
    'diffuse.R', 'specular.R' … as the passes of a two-pass matcap)."""
    names = sorted(channels)
    h, w = next(iter(channels.values())).shape

    def attr(name: str, kind: str, data: bytes) -> bytes:
        return name.encode() + b"\0" + kind.encode() + b"\0" + struct.pack("<i", len(data)) + data

    chlist = b"".join(n.encode() + b"\0" + struct.pack("<i4xii", 1, 1, 1) for n in names) + b"\0"
    box = struct.pack("<iiii", 0, 0, w - 1, h - 1)
    header = (struct.pack("<ii", 20000630, 2)
              + attr("BlenderMultiChannel", "string", b"Blender V2.55.1 and newer")
              + attr("channels", "chlist", chlist) + attr("compression", "compression", b"\0")
              + attr("dataWindow", "box2i", box) + attr("displayWindow", "box2i", box)
              + attr("lineOrder", "lineOrder", b"\0")
              + attr("pixelAspectRatio", "float", struct.pack("<f", 1.0))
              + attr("screenWindowCenter", "v2f", struct.pack("<ff", 0.0, 0.0))
              + attr("screenWindowWidth", "float", struct.pack("<f", 1.0)) + b"\0")
    rows = np.stack([np.asarray(channels[n], "<f2") for n in names], 1)  # (H, C, W)
    size = rows.shape[1] * w * 2
    offsets = len(header) + 8 * h + np.arange(h, dtype="<u8") * (8 + size)
    with open(path, "wb") as f:
        f.write(header + offsets.tobytes())
        for y in range(h):
            f.write(struct.pack("<ii", y, size) + rows[y].tobytes())


def ensure_matcap() -> str:
    """Generate and load SCAIL's shading as a Workbench matcap; returns its name. Blender indexes a
    matcap by the view-space normal (u, v = n_x, n_y · 0.496 + 0.5); with the light along the view,
    diffuse = 0.3 + 0.7·n_z and the highlight's half vector is the view, 0.5·n_z^32."""
    lights = bpy.context.preferences.studio_lights
    for sl in list(lights):
        if sl.type == "MATCAP" and sl.name == MATCAP_NAME:
            if Path(sl.path).is_file():
                return sl.name
            lights.remove(sl)  # its file went with an earlier session's temp folder
    folder = Path(bpy.app.tempdir or tempfile.gettempdir())  # the session's; loading does not copy
    path = folder / MATCAP_NAME
    n = 256
    u = ((np.arange(n) + 0.5) / n - 0.5) / 0.496
    nz = np.sqrt(np.clip(1.0 - u[None, :] ** 2 - u[:, None] ** 2, 0.0, 1.0))
    diffuse, spec, one = 0.3 + 0.7 * nz, 0.5 * nz ** 32, np.ones_like(nz)
    channels = {f"diffuse.{c}": diffuse for c in "RGB"} | {f"specular.{c}": spec for c in "RGB"}
    _write_exr(path, channels | {"diffuse.A": one, "specular.A": one})
    return lights.load(str(path), "MATCAP").name


def _link(nt, a, out, b, inp) -> None:
    nt.links.new(a.outputs[out], b.inputs[inp])


def ensure_node_group() -> bpy.types.ShaderNodeTree:
    """SCAIL's per-pixel shading as an emission: Colour in, Shader out (near/far from the scene's
    hp3d_scail_near/far properties, metres)."""
    ng = bpy.data.node_groups.get(NODE_GROUP)
    if ng is not None:
        return ng
    ng = bpy.data.node_groups.new(NODE_GROUP, "ShaderNodeTree")
    ng.interface.new_socket("Colour", in_out="INPUT", socket_type="NodeSocketColor")
    ng.interface.new_socket("Shader", in_out="OUTPUT", socket_type="NodeSocketShader")
    N = ng.nodes.new
    gin, gout = N("NodeGroupInput"), N("NodeGroupOutput")
    geo, cam = N("ShaderNodeNewGeometry"), N("ShaderNodeCameraData")
    # Cycles' camera axes are x right, y up, z forward (the View Vector at the centre is +Z), so
    # SCAIL's OpenCV-frame formulas carry over with z as is.
    ncam = N("ShaderNodeVectorTransform")
    ncam.vector_type, ncam.convert_from, ncam.convert_to = "NORMAL", "WORLD", "CAMERA"
    _link(ng, geo, "Normal", ncam, 0)

    def vmath(op, a, b=None, out=0):
        node = N("ShaderNodeVectorMath")
        node.operation = op
        ng.links.new(a, node.inputs[0])
        if b is not None:
            ng.links.new(b, node.inputs[1])
        return node.outputs[out]

    def math_(op, a, b=None, c=None, clamp=False):
        node = N("ShaderNodeMath")
        node.operation, node.use_clamp = op, clamp
        for i, v in enumerate((a, b, c)):
            if v is None:
                continue
            if isinstance(v, float):
                node.inputs[i].default_value = v
            else:
                ng.links.new(v, node.inputs[i])
        return node.outputs[0]

    def attr(name):
        node = N("ShaderNodeAttribute")
        node.attribute_type, node.attribute_name = "VIEW_LAYER", name  # view layer, then scene
        return node.outputs["Fac"]

    sep = N("ShaderNodeSeparateXYZ")
    ng.links.new(ncam.outputs[0], sep.inputs[0])
    diffuse = math_("MAXIMUM", math_("MULTIPLY", sep.outputs["Z"], -1.0), 0.0)
    # Half vector of the view (−ray) and the light (towards the camera: −Z).
    ray = vmath("NORMALIZE", cam.outputs["View Vector"])
    towards = N("ShaderNodeCombineXYZ")
    towards.inputs["Z"].default_value = -1.0
    half = vmath("NORMALIZE", vmath("SUBTRACT", towards.outputs[0], ray))
    spec = math_("POWER", math_("MAXIMUM", vmath("DOT_PRODUCT", ncam.outputs[0], half, out=1), 0.0), 32.0)
    near, far = attr(_NEAR_PROP), attr(_FAR_PROP)
    span = math_("SUBTRACT", far, _ZNEAR)
    fade = math_("SUBTRACT", 1.0, math_("DIVIDE", math_("SUBTRACT", cam.outputs["View Z Depth"], near), span),
                 clamp=True)
    base = math_("MULTIPLY", math_("MULTIPLY_ADD", diffuse, 0.7, 0.3), fade)
    high = math_("MULTIPLY", math_("MULTIPLY", spec, 0.5), fade)
    col = N("ShaderNodeVectorMath")
    col.operation = "MULTIPLY_ADD"  # colour·base + high
    ng.links.new(gin.outputs["Colour"], col.inputs[0])
    ng.links.new(base, col.inputs[1])
    ng.links.new(high, col.inputs[2])
    emit = N("ShaderNodeEmission")
    ng.links.new(col.outputs[0], emit.inputs["Color"])
    emit.inputs["Strength"].default_value = 1.0
    ng.links.new(emit.outputs[0], gout.inputs["Shader"])
    return ng


def _material_nodes(mat: bpy.types.Material, colour) -> None:
    if mat.node_tree is None:  # Blender < 5.0 creates node trees only on request
        mat.use_nodes = True
    nt = mat.node_tree
    nt.nodes.clear()
    group = nt.nodes.new("ShaderNodeGroup")
    group.node_tree = ensure_node_group()
    group.inputs["Colour"].default_value = (*colour, 1.0)
    out = nt.nodes.new("ShaderNodeOutputMaterial")
    nt.links.new(group.outputs["Shader"], out.inputs["Surface"])


def _fade_drivers(mat: bpy.types.Material, colour, a: bpy.types.Object, b: bpy.types.Object,
                  camera: bpy.types.Object, scene: bpy.types.Scene) -> None:
    """Workbench: the limb's colour times SCAIL's depth fade at the limb's middle (distance from
    the camera, which is the depth to within a few percent near the image centre)."""
    mat.driver_remove("diffuse_color")
    mat.diffuse_color = (*colour, 1.0)
    for i in range(3):
        d = mat.driver_add("diffuse_color", i).driver
        d.type = "SCRIPTED"
        for name, obj in (("a", a), ("b", b)):
            v = d.variables.new()
            v.name, v.type = name, "LOC_DIFF"
            v.targets[0].id, v.targets[1].id = camera, obj
        for name, prop in (("near", _NEAR_PROP), ("far", _FAR_PROP)):
            v = d.variables.new()
            v.name, v.type = name, "SINGLE_PROP"
            v.targets[0].id_type, v.targets[0].id = "SCENE", scene
            v.targets[0].data_path = f'["{prop}"]'
        d.expression = (f"{float(colour[i]):.6f} * max(0.0, min(1.0, 1.0 - ((a + b) * 0.5 - near) / "
                        f"(far - {_ZNEAR})))")


def apply_look(rig: scail_rig.Rig, scene: bpy.types.Scene, camera: bpy.types.Object) -> None:
    """SCAIL's look on the rig's limb materials: emission shading for Cycles and a depth-faded
    viewport colour for Workbench."""
    for prop, value in ((_NEAR_PROP, 1.0), (_FAR_PROP, 7.0)):
        if prop not in scene:
            scene[prop] = value
    for i, parts in rig.limbs:
        a, b, _ = LIMBS[i]
        colour = tuple(float(c) for c in LIMB_COLOURS[i])
        mat = parts[0].material_slots[0].material
        _material_nodes(mat, colour)
        _fade_drivers(mat, colour, rig.joints[a], rig.joints[b], camera, scene)


def measure_depth_range(scene: bpy.types.Scene, rig: scail_rig.Rig, max_samples: int = 200
                        ) -> tuple[float, float]:
    """SCAIL's (near, far) in metres over the frame range, from the camera-axis depth of every
    joint (near = nearest, far = farthest + 6 m, capped at 20 m). Up to `max_samples` frames are
    evaluated; the scene's hp3d_scail_near/far are set to the result."""
    frames = list(range(scene.frame_start, scene.frame_end + 1, max(scene.frame_step, 1)))
    if len(frames) > max_samples:
        frames = [frames[i] for i in np.linspace(0, len(frames) - 1, max_samples).round().astype(int)]
    keep = scene.frame_current
    depths = []
    for f in frames:
        dg = evaluated(scene, f)
        inv = scene.camera.evaluated_get(dg).matrix_world.inverted()
        depths += [-(inv @ e.evaluated_get(dg).matrix_world.translation).z for e in rig.joints.values()]
    scene.frame_set(keep)
    z = np.array(depths, float)
    z = z[np.isfinite(z)]
    near, far = (1.0, 7.0) if z.size == 0 else (max(float(z.min()), _ZNEAR), min(float(z.max()) + 6.0, 20.0))
    scene[_NEAR_PROP], scene[_FAR_PROP] = near, far
    return near, far


# --- render settings and the render -----------------------------------------------------------

def configure(scene: bpy.types.Scene, engine: str) -> None:
    """Render settings for `engine` ('WORKBENCH' or 'CYCLES'): transparent film, colours written
    as computed, hard one-sample edges, PNG RGBA."""
    r = scene.render
    r.engine = ENGINES[engine]
    r.film_transparent = True
    r.dither_intensity = 0.0
    r.use_compositing = r.use_sequencer = False
    vs = scene.view_settings
    vs.view_transform, vs.look, vs.exposure, vs.gamma = "Raw", "None", 0.0, 1.0
    vs.use_curve_mapping = False
    img = r.image_settings
    if hasattr(img, "media_type"):  # 5.0+
        img.media_type = "IMAGE"
    img.file_format, img.color_mode, img.color_depth = "PNG", "RGBA", "8"
    img.compression = 15  # PNG deflate is the per-frame cost after the render itself
    r.use_file_extension = True
    r.use_persistent_data = True  # Cycles keeps the scene between frames; only transforms change
    if engine == "WORKBENCH":
        scene.display.render_aa = "OFF"
        sh = scene.display.shading
        sh.light, sh.studio_light = "MATCAP", ensure_matcap()
        sh.color_type, sh.show_specular_highlight = "MATERIAL", True
        sh.show_cavity = sh.show_object_outline = sh.show_shadows = sh.show_xray = False
        sh.use_dof = False
    else:
        c = scene.cycles
        c.device, c.samples, c.use_adaptive_sampling, c.use_denoising = "CPU", 1, False, False
        c.pixel_filter_type, c.filter_width = "BOX", 0.01  # the pixel centre: no anti-aliasing
        c.seed, c.use_animated_seed = 0, False
        c.max_bounces = c.diffuse_bounces = c.glossy_bounces = c.transmission_bounces = 0
        c.volume_bounces = c.transparent_max_bounces = 0
        c.caustics_reflective = c.caustics_refractive = False
        c.use_auto_tile = False
        scene.world = None


@dataclass
class RenderResult:
    engine: str
    frames: int
    seconds: float
    png_dir: Path
    pngs: list[Path]
    mp4: Path | None


def png_pattern(out_dir: Path, stem: str) -> Path:
    return Path(out_dir) / "rgba" / f"{stem}_scail_######"


def render(scene: bpy.types.Scene, out_dir: str | Path, stem: str, engine: str,
           mp4: bool = True) -> RenderResult:
    """Render the scene's frame range to `out_dir`/rgba/<stem>_scail_<frame>.png (RGBA; frame =
    Blender frame) and, with `mp4`, `out_dir`/<stem>_scail.mp4. Blocking (background mode)."""
    configure(scene, engine)
    out_dir = Path(out_dir)
    pattern = png_pattern(out_dir, stem)
    pattern.parent.mkdir(parents=True, exist_ok=True)
    scene.render.filepath = str(pattern)
    t = time.perf_counter()
    bpy.ops.render.render(animation=True, scene=scene.name)
    seconds = time.perf_counter() - t
    frames = range(scene.frame_start, scene.frame_end + 1, max(scene.frame_step, 1))
    pngs = [Path(scene.render.frame_path(frame=f)) for f in frames]
    lost = [p.name for p in pngs if not p.is_file()]
    if lost:
        raise RuntimeError(f"the render wrote no {lost[0]} ({len(lost)} frames missing)")
    video = encode_mp4(pngs, out_dir / f"{stem}_scail.mp4", scene) if mp4 else None
    return RenderResult(engine, len(pngs), seconds, pattern.parent, pngs, video)


def encode_mp4(pngs: list[Path], path: Path, like: bpy.types.Scene) -> Path:
    """PNGs → H.264 MP4 with Blender's own FFmpeg (Blender's Python has no OpenCV), colours over
    black (the sequencer premultiplies, H.264 drops the alpha), at `like`'s frame rate."""
    enc = bpy.data.scenes.new("SCAIL encode")
    try:
        r = enc.render
        r.resolution_x, r.resolution_y = like.render.resolution_x, like.render.resolution_y
        r.resolution_percentage = 100
        r.fps, r.fps_base = like.render.fps, like.render.fps_base
        enc.view_settings.view_transform = "Standard"  # sRGB strip → sRGB file unchanged
        enc.render.dither_intensity = 0.0
        sed = enc.sequence_editor_create()
        strips = sed.strips if hasattr(sed, "strips") else sed.sequences  # 5.0 renamed it
        strip = strips.new_image("SCAIL", str(pngs[0]), 1, 1)
        for p in pngs[1:]:
            strip.elements.append(p.name)
        enc.frame_start, enc.frame_end = 1, len(pngs)
        img = r.image_settings
        if hasattr(img, "media_type"):
            img.media_type = "VIDEO"
        img.file_format = "FFMPEG"
        r.ffmpeg.format, r.ffmpeg.codec = "MPEG4", "H264"
        r.ffmpeg.constant_rate_factor = "HIGH"
        r.ffmpeg.audio_codec = "NONE"
        r.use_sequencer, r.use_compositing, r.use_file_extension = True, False, False
        path.parent.mkdir(parents=True, exist_ok=True)
        r.filepath = str(path)
        bpy.ops.render.render(animation=True, scene=enc.name)
    finally:
        bpy.data.scenes.remove(enc)
    if not path.is_file():
        raise RuntimeError(f"Blender's FFmpeg did not write {path.name}")
    return path


_PICKED: dict[tuple, str] = {}


def _coverage(path: Path) -> int:
    """Pixels with alpha > 0.5 in a rendered PNG (-1 when it cannot be read)."""
    try:
        img = bpy.data.images.load(str(path))
    except RuntimeError:
        return -1
    try:
        px = np.empty(img.size[0] * img.size[1] * 4, np.float32)
        img.pixels.foreach_get(px)
        return int((px[3::4] > 0.5).sum())
    finally:
        bpy.data.images.remove(img)


def pick_engine(scene: bpy.types.Scene, candidates: tuple[str, ...] = ("WORKBENCH", "CYCLES")) -> str:
    """The faster engine for this scene's size, measured once per session: a warm-up frame, then a
    timed one, per engine. An engine that fails, or draws far less of the body than the other
    (Workbench without a working OpenGL), is out."""
    key = (scene.render.resolution_x, scene.render.resolution_y)
    if key in _PICKED:
        return _PICKED[key]
    times, cover = {}, {}
    keep = scene.render.filepath
    with tempfile.TemporaryDirectory() as tmp:
        for engine in candidates:
            path = Path(tmp) / f"{engine}.png"
            try:
                configure(scene, engine)
                scene.render.filepath = str(path)
                bpy.ops.render.render(write_still=True, scene=scene.name)
                t = time.perf_counter()
                bpy.ops.render.render(write_still=True, scene=scene.name)
                times[engine] = time.perf_counter() - t
            except RuntimeError:
                continue
            cover[engine] = _coverage(path)
    scene.render.filepath = keep
    most = max(cover.values(), default=0)
    times = {e: t for e, t in times.items() if cover[e] >= 0.5 * most and cover[e] >= 0}
    if not times:
        raise RuntimeError("neither Workbench nor Cycles can render here")
    _PICKED[key] = min(times, key=times.get)
    return _PICKED[key]


# --- everything at once -------------------------------------------------------------------------

@dataclass
class Setup:
    scene: bpy.types.Scene
    rig: scail_rig.Rig
    camera: bpy.types.Object
    intrinsics: Intrinsics
    depth: tuple[float, float]


def setup(source: bpy.types.Scene, armature: bpy.types.Object, mapping: dict[str, scail_rig.JointSource],
          size: tuple[int, int] | None = None, camera: str = "AUTO", fov_deg: float = 55.0,
          radius: float = scail_rig.RADIUS_M, show_in_source: bool = True) -> Setup:
    """Build the rig, the SCAIL scene and its camera for `armature`, ready to render.

    camera: 'RESULT' the engine's camera of the armature's HumanPose3D result, scaled and
    centre-cropped to `size` as the engine's SCAIL render does; 'FOV' `fov_deg` across the longer
    side, following the source scene's camera (or framing the armature from the front when there is
    none); 'AUTO' RESULT when the armature has one, else FOV. size: None for SCAIL's default
    (following the video's orientation for a result, portrait otherwise)."""
    scene = ensure_scene(source)
    rig = scail_rig.build_rig(armature, mapping, scene.collection, radius)
    place_rig(rig, scene, source, show_in_source)
    video_k = result_intrinsics(armature) if camera in ("AUTO", "RESULT") else None
    if camera == "RESULT" and video_k is None:
        raise ValueError(f"{armature.name} has no HumanPose3D result camera (run.json)")
    if video_k is not None:
        size = size or default_size(video_k.width, video_k.height)
        k = fit_camera(video_k, *size)[0]
        cam = ensure_camera(scene, k, matrix=result_camera_matrix(armature))
    else:
        size = size or PORTRAIT
        k = fov_intrinsics(*size, fov_deg)
        follow = source.camera if source.camera is not None and source.camera.type == "CAMERA" else None
        if follow is not None and follow.name in scene.collection.objects:
            follow = None  # the SCAIL camera itself
        cam = ensure_camera(scene, k, follow, list(rig.joints.values()) if follow is None else None)
    apply_look(rig, scene, cam)
    depth = measure_depth_range(scene, rig)
    return Setup(scene, rig, cam, k, depth)
