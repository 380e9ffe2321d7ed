"""Run: the panel's settings as a RunConfig (operators/settings.py), handed to the engine's run
service (engine/service.py), then the result folder built into the scene.

Interactive, the engine runs in a child process and a modal timer drains its events, so Blender's
UI stays live; Esc or Cancel stops it. In background mode (`blender -b`, the bpy module) there is
no event loop: the operator waits for the same run, in this process when this Python can run the
engine, else in the child."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.types import Operator

from ..engine import service
from ..engine.errors import EngineError
from . import settings
from .import_result import import_folder
from .preferences import engine_python

# The one live run (a module global rather than operator state, so Cancel can reach it).
_ACTIVE: dict[str, service.Run | None] = {"run": None}


def active_run() -> service.Run | None:
    return _ACTIVE["run"]


def _redraw(context: bpy.types.Context) -> None:
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


class HP3D_OT_run(Operator):
    """Run HumanPose3D on the video, then build an animated armature and camera"""

    bl_idname = "humanpose3d.run"
    bl_label = "Run"
    bl_options = {"REGISTER", "UNDO"}

    _timer = None

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        props = getattr(context.scene, "hp3d", None)
        if props is None or active_run() is not None or not props.video_path.strip():
            return False
        if settings.missing_calibration(props):  # the panel says so too
            cls.poll_message_set("further videos need a calibration file")
            return False
        return True

    def execute(self, context: bpy.types.Context) -> set[str]:
        background = bpy.app.background or context.window is None
        if not self._start(context, background):
            return {"CANCELLED"}
        if not background:
            wm = context.window_manager
            self._timer = wm.event_timer_add(0.1, window=context.window)
            wm.modal_handler_add(self)
            return {"RUNNING_MODAL"}
        try:
            end = service.wait(active_run(), service.tenths("HumanPose3D:"))
        except KeyboardInterrupt:  # Ctrl-C in a background Blender: the run is cancelled by now
            end = service.Event("cancelled")
        return self._conclude(context, end)

    def _start(self, context: bpy.types.Context, background: bool) -> bool:
        """Check the settings and start the run; False (with the reason reported) if it cannot."""
        props, python = context.scene.hp3d, engine_python(context)
        here = background and service.can_run_here(python)  # interactive: always a child
        try:
            _ACTIVE["run"] = service.start(settings.checked_config(props), None if here else python)
        except (EngineError, OSError) as exc:  # a setting refused; an Engine Python that will not start
            why = f"cannot start the engine's Python: {exc}" if isinstance(exc, OSError) else str(exc)
            self.report({"ERROR"}, why)
            return False
        props.running, props.progress, props.stage = True, 0.0, "starting"
        return True

    def modal(self, context: bpy.types.Context, event) -> set[str]:
        run = active_run()
        if run is None:  # cleared by a file load or unregister
            return self._finish(context, {"CANCELLED"})
        props = context.scene.hp3d
        if event.type == "ESC" and event.value == "PRESS":
            run.cancel()
            props.stage = "cancelling"
            return {"RUNNING_MODAL"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        for ev in run.poll():
            if ev.kind == "progress":
                props.progress, props.stage = ev.fraction, ev.message
        run.kill_if_stuck()
        _redraw(context)
        if not run.finished:
            return {"PASS_THROUGH"}
        return self._conclude(context, service.wait(run))

    def _conclude(self, context: bpy.types.Context, end: service.Event) -> set[str]:
        """The run has ended: build the scene from its folder, or say why not."""
        if end.kind == "done":
            try:
                built = import_folder(context, Path(end.out_dir))
            except Exception as exc:  # the files are there; say why the scene was not built
                self.report({"ERROR"}, f"engine finished but the scene could not be built: {exc}")
                return self._finish(context, {"CANCELLED"}, "import failed")
            start, stop = built["frames"]
            self.report({"INFO"}, f"{end.out_dir}: {built['armature'].name}, frames {start}–{stop} "
                                  f"({end.frames} frames in {end.seconds:.1f} s)")
            return self._finish(context, {"FINISHED"}, "done")
        if end.kind == "cancelled":
            self.report({"WARNING"}, service.CANCELLED)
            return self._finish(context, {"CANCELLED"}, "cancelled")
        self.report({"ERROR"}, end.message)
        return self._finish(context, {"CANCELLED"}, "failed")

    def cancel(self, context: bpy.types.Context) -> None:
        """Blender is closing or the handler is removed: never leave the child behind."""
        run = active_run()
        if run is not None:
            run.cancel()
            run.kill()
        self._finish(context, {"CANCELLED"}, "cancelled")

    def _finish(self, context: bpy.types.Context, result: set[str], stage: str = "") -> set[str]:
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        _ACTIVE["run"] = None
        props = getattr(context.scene, "hp3d", None)
        if props is not None:
            props.running, props.stage = False, stage
            props.progress = 1.0 if "FINISHED" in result else 0.0
        _redraw(context)
        return result
