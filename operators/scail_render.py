"""Render SCAIL's pose video with Blender. Interactively it runs Blender's own render job
(progress in the status bar, Esc cancels) and encodes the MP4 when it completes; in background mode
it blocks until the files are written."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.types import Operator

from .scail_setup import ScailOperator, modules, output_folder, stem


class HP3D_OT_scail_render(ScailOperator, Operator):
    """Render SCAIL's pose video with Blender: RGBA PNGs (alpha = body mask) and an MP4"""

    bl_idname = "humanpose3d.scail_render"
    bl_label = "Render SCAIL"

    def _start(self, context: bpy.types.Context):
        _, _, scail_scene = modules()
        props = context.scene.hp3d_scail
        st = self._setup(context)
        if st is None:
            return None
        engine = props.engine
        if engine == "AUTO":
            try:
                engine = scail_scene.pick_engine(st.scene)
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
        _, _, scail_scene = modules()
        props = context.scene.hp3d_scail
        try:
            res = scail_scene.render(st.scene, out, name, engine)
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
        _, _, scail_scene = modules()
        scail_scene.configure(st.scene, engine)
        pattern = scail_scene.png_pattern(out, name)
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
                    video = scail_scene.encode_mp4(pngs, out / f"{name}_scail.mp4",
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
