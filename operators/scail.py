"""Build SCAIL's cylinder rig on an armature and render SCAIL's pose video with Blender.

Render runs Blender's own render job interactively (progress in the status bar, Esc cancels) and
encodes the MP4 when it completes; in background mode it blocks until the files are written."""

from __future__ import annotations

import re
from pathlib import Path

import bpy
from bpy.types import Operator

from .settings import user_folder


def _modules():
    from ..panels import scail as panel
    from ..scene import scail_render, scail_rig

    return panel, scail_rig, scail_render


def source_scene(context: bpy.types.Context) -> bpy.types.Scene:
    """The scene the armature lives in (run from the SCAIL scene itself, the one it came from)."""
    scene = context.scene
    name = scene.get("hp3d_scail_source")
    if name and name != scene.name and name in bpy.data.scenes:
        return bpy.data.scenes[name]
    return scene


def _armature(context: bpy.types.Context, props) -> bpy.types.Object | None:
    if props.armature is None:
        obj = context.active_object
        if obj is not None and obj.type == "ARMATURE":
            props.armature = obj  # fills the mapping from the detected preset
    return props.armature


def output_folder(props, armature: bpy.types.Object) -> Path:
    """Absolute output folder; a blend-relative path in an unsaved file goes to the extension's user
    folder (settings.user_folder)."""
    raw = props.output_dir.strip() or "//scail/"
    if raw.startswith("//") and not bpy.data.filepath:
        return user_folder("hp3d_scail", re.sub(r"[^\w.-]+", "_", armature.name))
    return Path(bpy.path.abspath(raw))


def stem(armature: bpy.types.Object) -> str:
    """File name stem: the video's for a HumanPose3D result, else the armature's name."""
    folder = armature.get("hp3d_output")
    name = Path(folder).name if folder else armature.name
    return re.sub(r"[^\w.-]+", "_", name) or "scail"


def prepare(context: bpy.types.Context, props):
    """Rig, SCAIL scene and camera from the panel's settings; returns scene/scail_render.Setup."""
    panel, scail_rig, scail_render = _modules()
    arm = props.armature
    if not len(props.joints):
        panel.fill_from_preset(props)
    size = (props.width, props.height) if props.width and props.height else None
    return scail_render.setup(source_scene(context), arm, panel.mapping(props), size=size,
                              camera=props.camera, fov_deg=props.fov_deg, radius=props.radius_mm / 1000.0,
                              show_in_source=props.show_rig)


class _ScailBase:
    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        props = getattr(context.scene, "hp3d_scail", None)
        if props is None:
            return False
        obj = props.armature or context.active_object
        return obj is not None and obj.type == "ARMATURE"

    def _setup(self, context: bpy.types.Context):
        props = context.scene.hp3d_scail
        if _armature(context, props) is None:
            self.report({"ERROR"}, "choose an armature")
            return None
        try:
            st = prepare(context, props)
        except (ValueError, KeyError, RuntimeError) as exc:
            self.report({"ERROR"}, str(exc))
            return None
        if not st.rig.limbs:
            self.report({"ERROR"}, "no SCAIL joint maps onto this armature's bones: pick a preset or "
                                   "set the bones")
            return None
        if st.rig.missing:
            self.report({"WARNING"}, f"no bone for {', '.join(st.rig.missing)}: their limbs are left out")
        return st


class HP3D_OT_scail_build(_ScailBase, Operator):
    """Dress the armature in SCAIL's cylinders (they follow any animation) and set up the SCAIL
    scene and camera"""

    bl_idname = "humanpose3d.scail_build"
    bl_label = "Build Rig"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        st = self._setup(context)
        if st is None:
            return {"CANCELLED"}
        context.scene.hp3d_scail.status = (f"{len(st.rig.limbs)} limbs, camera {st.intrinsics.width}×"
                                           f"{st.intrinsics.height}")
        return {"FINISHED"}


class HP3D_OT_scail_render(_ScailBase, Operator):
    """Render SCAIL's pose video with Blender: RGBA PNGs (alpha = body mask) and an MP4"""

    bl_idname = "humanpose3d.scail_render"
    bl_label = "Render SCAIL"

    def _start(self, context: bpy.types.Context):
        _, _, scail_render = _modules()
        props = context.scene.hp3d_scail
        st = self._setup(context)
        if st is None:
            return None
        engine = props.engine
        if engine == "AUTO":
            try:
                engine = scail_render.pick_engine(st.scene)
            except RuntimeError as exc:
                self.report({"ERROR"}, str(exc))
                return None
        out = output_folder(props, props.armature)
        return st, engine, out, stem(props.armature)

    def execute(self, context: bpy.types.Context) -> set[str]:
        if not bpy.app.background and context.window is not None:
            return self.invoke(context, None)
        started = self._start(context)
        if started is None:
            return {"CANCELLED"}
        st, engine, out, name = started
        _, _, scail_render = _modules()
        props = context.scene.hp3d_scail
        try:
            res = scail_render.render(st.scene, out, name, engine)
        except (RuntimeError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        props.status = f"{res.frames} frames, {engine.title()}, {res.seconds:.1f} s"
        self.report({"INFO"}, f"{props.status} → {res.mp4}")
        return {"FINISHED"}

    def invoke(self, context: bpy.types.Context, event) -> set[str]:
        started = self._start(context)
        if started is None:
            return {"CANCELLED"}
        st, engine, out, name = started
        _, _, scail_render = _modules()
        scail_render.configure(st.scene, engine)
        pattern = scail_render.png_pattern(out, name)
        pattern.parent.mkdir(parents=True, exist_ok=True)
        st.scene.render.filepath = str(pattern)
        props = context.scene.hp3d_scail
        scene_name = st.scene.name

        def done(scene, *_args) -> None:
            if scene.name != scene_name:
                return
            _remove_handlers()
            frames = range(scene.frame_start, scene.frame_end + 1, max(scene.frame_step, 1))
            pngs = [Path(scene.render.frame_path(frame=f)) for f in frames]

            def encode() -> None:  # a timer, not the handler: no render may start inside one
                try:
                    video = scail_render.encode_mp4(pngs, out / f"{name}_scail.mp4",
                                                    bpy.data.scenes[scene_name])
                    props.status = f"{len(pngs)} frames, {engine.title()} → {video.name}"
                except (RuntimeError, OSError, KeyError) as exc:
                    props.status = f"PNGs written; MP4 failed: {exc}"

            bpy.app.timers.register(encode, first_interval=0.1)

        def cancelled(scene, *_args) -> None:
            if scene.name == scene_name:
                _remove_handlers()
                props.status = "render cancelled"

        _HANDLERS[:] = [(bpy.app.handlers.render_complete, done), (bpy.app.handlers.render_cancel, cancelled)]
        for lst, fn in _HANDLERS:
            lst.append(fn)
        props.status = f"rendering with {engine.title()}…"
        started = bpy.ops.render.render("INVOKE_DEFAULT", animation=True, scene=scene_name)
        if "CANCELLED" in started:
            _remove_handlers()
            props.status = "the render did not start"
            return {"CANCELLED"}
        return {"FINISHED"}


_HANDLERS: list = []


def _remove_handlers() -> None:
    for lst, fn in _HANDLERS:
        if fn in lst:
            lst.remove(fn)
    _HANDLERS.clear()


CLASSES = (HP3D_OT_scail_build, HP3D_OT_scail_render)
