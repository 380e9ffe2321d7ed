"""Run the engine on the panel's video (and, calibrated, the further cameras' videos), then build
the scene from its output folder.

Interactive: the engine runs in a child process (operators/engine_runner.py) and a modal timer
drains its progress lines, so Blender's UI stays live; Esc or Cancel stops the child. In
background mode (`blender -b`, the bpy module) there is no event loop, so the operator returns
when done: in-process when this Python can run the engine, else through the same child process.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from pathlib import Path

import bpy
from bpy.types import Operator

from . import settings, views
from .import_result import import_folder
from .job import EngineJob, run_blocking
from .preferences import engine_python

# The one live child run (a module global rather than operator state, so Cancel can reach it).
_ACTIVE: dict[str, EngineJob | None] = {"job": None}
_POLL_S = 0.1


def active_job() -> EngineJob | None:
    return _ACTIVE["job"]


def _redraw(context: bpy.types.Context) -> None:
    wm = context.window_manager
    for window in wm.windows:
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
        if props is None or active_job() is not None or not props.video_path.strip():
            return False
        if views.missing_calibration(props):  # the panel says so too
            cls.poll_message_set("further videos need a calibration file")
            return False
        return True

    def _check(self, context: bpy.types.Context) -> bool:
        props = context.scene.hp3d
        video = settings.video_path(props)
        reason = f"video not found: {video}" if not video.is_file() else views.problem(props)
        if reason:
            self.report({"ERROR"}, reason)
            return False
        return True

    def execute(self, context: bpy.types.Context) -> set[str]:
        if bpy.app.background or context.window is None:
            return self._run_here(context)
        return self.invoke(context, None)

    def invoke(self, context: bpy.types.Context, event) -> set[str]:
        if not self._check(context):
            return {"CANCELLED"}
        props = context.scene.hp3d
        try:
            job = EngineJob(engine_python(context), views.engine_args(props))
        except OSError as exc:
            self.report({"ERROR"}, f"cannot start the engine's Python: {exc}")
            return {"CANCELLED"}
        _ACTIVE["job"] = job
        props.running, props.progress, props.stage = True, 0.0, "starting"
        wm = context.window_manager
        self._timer = wm.event_timer_add(_POLL_S, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: bpy.types.Context, event) -> set[str]:
        job = active_job()
        if job is None:  # cleared by a file load or unregister
            return self._finish(context, {"CANCELLED"})
        props = context.scene.hp3d
        if event.type == "ESC" and event.value == "PRESS":
            job.cancel()
            props.stage = "cancelling"
            return {"RUNNING_MODAL"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        for ev in job.poll():
            if "progress" in ev:
                props.progress = float(ev["progress"])
                props.stage = str(ev.get("message", ""))
        job.kill_if_stuck()
        _redraw(context)
        if not job.finished:
            return {"PASS_THROUGH"}
        job.poll()
        outcome = job.outcome
        if "done" in outcome:
            try:
                built = import_folder(context, Path(outcome["done"]))
            except Exception as exc:  # the files are there; say why the scene was not built
                self.report({"ERROR"}, f"engine finished but the scene could not be built: {exc}")
                return self._finish(context, {"CANCELLED"}, "import failed")
            self.report({"INFO"}, f"{outcome['frames']} frames in {outcome['seconds']:.1f} s → "
                                  f"{built['armature'].name}")
            return self._finish(context, {"FINISHED"}, "done")
        if "cancelled" in outcome or job.cancel_requested_at is not None:
            self.report({"WARNING"}, "cancelled; nothing was written")
            return self._finish(context, {"CANCELLED"}, "cancelled")
        self.report({"ERROR"}, job.error_text())
        return self._finish(context, {"CANCELLED"}, "failed")

    def cancel(self, context: bpy.types.Context) -> None:
        """Blender is closing or the handler is removed: never leave the child behind."""
        job = active_job()
        if job is not None:
            job.cancel()
            job.kill()
        self._finish(context, {"CANCELLED"}, "cancelled")

    def _finish(self, context: bpy.types.Context, result: set[str], stage: str = "") -> set[str]:
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        _ACTIVE["job"] = None
        props = getattr(context.scene, "hp3d", None)
        if props is not None:
            props.running = False
            props.stage = stage
            props.progress = 1.0 if "FINISHED" in result else 0.0
        _redraw(context)
        return result

    def _run_here(self, context: bpy.types.Context) -> set[str]:
        """Synchronous run for background mode."""
        if not self._check(context):
            return {"CANCELLED"}
        python = engine_python(context)
        same = os.path.realpath(python) == os.path.realpath(sys.executable)
        if not same or importlib.util.find_spec("mediapipe") is None:
            return self._run_child_blocking(context, python)
        from ..engine.cli import build_parser, config_from_args
        from ..engine.errors import EngineError

        props = context.scene.hp3d
        try:
            cfg = config_from_args(build_parser().parse_args(["run", *views.engine_args(props)]))
            from ..engine.pipeline import run
        except (EngineError, SystemExit) as exc:  # SystemExit: the engine's parser rejected a value
            self.report({"ERROR"}, str(exc) if isinstance(exc, EngineError) else "invalid settings")
            return {"CANCELLED"}
        shown = [-1]

        def progress(frac: float, message: str) -> None:
            props.progress, props.stage = frac, message
            if int(frac * 10) > shown[0]:  # a line per 10 %: background runs have no UI
                shown[0] = int(frac * 10)
                print(f"HumanPose3D: {100 * frac:3.0f} % {message}", flush=True)

        props.running = True
        try:
            result = run(cfg, progress=progress, cancel=threading.Event())
            built = import_folder(context, result.out_dir)
        except (EngineError, ValueError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            props.stage = "failed"
            return {"CANCELLED"}
        finally:
            props.running = False
        props.stage = "done"
        start, end = built["frames"]
        self.report({"INFO"}, f"{result.out_dir}: {built['armature'].name}, frames {start}–{end}")
        return {"FINISHED"}


    def _run_child_blocking(self, context: bpy.types.Context, python: str) -> set[str]:
        props = context.scene.hp3d
        shown = [-1]

        def on_event(ev: dict) -> None:
            if "progress" in ev and int(ev["progress"] * 10) > shown[0]:
                shown[0] = int(ev["progress"] * 10)
                print(f"HumanPose3D: {100 * ev['progress']:3.0f} % {ev.get('message', '')}", flush=True)

        try:
            job = EngineJob(python, views.engine_args(props))
        except OSError as exc:
            self.report({"ERROR"}, f"cannot start the engine's Python: {exc}")
            return {"CANCELLED"}
        outcome = run_blocking(job, on_event)
        if "done" not in outcome:
            self.report({"ERROR"}, "cancelled" if "cancelled" in outcome else job.error_text())
            props.stage = "failed"
            return {"CANCELLED"}
        built = import_folder(context, Path(outcome["done"]))
        props.stage = "done"
        self.report({"INFO"}, f"{outcome['done']}: {built['armature'].name}")
        return {"FINISHED"}


class HP3D_OT_cancel(Operator):
    """Stop the running HumanPose3D engine (nothing half-written is left)"""

    bl_idname = "humanpose3d.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return active_job() is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        job = active_job()
        if job is not None:
            job.cancel()
            context.scene.hp3d.stage = "cancelling"
        return {"FINISHED"}
