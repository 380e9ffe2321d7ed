"""Apply to Character: retarget the HumanPose3D armature's motion onto the character picked in the
panel. The work is scene/retarget.py's; this only gathers, steps and reports.

A rig posed through Blender's evaluation (a generated Rigify rig: about 0.08 s a frame, so minutes
for a long clip) is stepped from a modal timer, a tenth of a second of frames a tick: the panel
shows a progress bar, the viewport redraws (and can be orbited), other input waits, and Esc
cancels with the character left as it was. Headless or from a script, it runs all at once.
"""

from __future__ import annotations

import time

import bpy
from bpy.types import Operator

from .run import _redraw

_TICK_S = 0.1  # posing per timer tick: the UI redraws between ticks
# Input that only moves the view passes through while the character is posed; the rest waits.
_VIEW_EVENTS = {"MOUSEMOVE", "INBETWEEN_MOUSEMOVE", "MIDDLEMOUSE", "WHEELUPMOUSE", "WHEELDOWNMOUSE",
                "TRACKPADPAN", "TRACKPADZOOM", "MOUSEROTATE", "NDOF_MOTION", "WINDOW_DEACTIVATE"}


class HP3D_OT_retarget(Operator):
    """Key the character with the HumanPose3D motion through the bone map (its previous action is
    kept, with a fake user)"""

    bl_idname = "humanpose3d.retarget"
    bl_label = "Apply to Character"
    bl_options = {"REGISTER", "UNDO"}

    _timer = None
    _steps = None

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        props = getattr(context.scene, "hp3d_retarget", None)
        return props is not None and not props.running

    def execute(self, context: bpy.types.Context) -> set[str]:
        ended = self._begin(context)
        if ended is not None:
            return ended
        if bpy.app.background or context.window is None:
            return self._step(context, float("inf"))
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.01, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def _begin(self, context: bpy.types.Context) -> set[str] | None:
        """Check, solve and start posing; the operator's result when that is already the end."""
        from ..panels.retarget import get_map
        from ..scene import retarget

        props = context.scene.hp3d_retarget
        source = props.source or retarget.find_source(context.scene)
        if source is None:
            self.report({"ERROR"}, "no HumanPose3D armature in the scene: run or import a result first")
            return {"CANCELLED"}
        self._steps = retarget.retarget_steps(source, props.target, get_map(props))
        props.running, props.progress = True, 0.0
        state = self._step(context, 0.0)
        return None if state == {"RUNNING_MODAL"} else state

    def _step(self, context: bpy.types.Context, seconds: float) -> set[str]:
        """Advance for about `seconds` (at least one step); FINISHED/CANCELLED once it has ended."""
        from ..scene import face, retarget

        props = context.scene.hp3d_retarget
        t0 = time.perf_counter()
        try:
            while True:
                props.progress = next(self._steps)
                if time.perf_counter() - t0 >= seconds:
                    return {"RUNNING_MODAL"}
        except StopIteration as done:
            rep = done.value
        except (retarget.RetargetError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            return self._finish(context, {"CANCELLED"})
        except Exception as exc:  # a bug of ours: the character is as it was (the steps' finally)
            self.report({"ERROR"}, f"retarget failed: {type(exc).__name__}: {exc}")
            return self._finish(context, {"CANCELLED"})
        start, end = rep["frames"]
        kept = f"; previous action '{rep['old_action']}' kept" if rep["old_action"] else ""
        props.status = (f"{props.target.name}: {rep['keys']} keys, frames {start}–{end}, "
                        f"scale {rep['scale']:.2f}{kept}{face.summary(rep['face'])}")
        self.report({"INFO"}, props.status)
        return self._finish(context, {"FINISHED"})

    def modal(self, context: bpy.types.Context, event) -> set[str]:
        if event.type == "ESC" and event.value == "PRESS":
            self._steps.close()  # puts the pose, the IK/FK switches and the old action back
            context.scene.hp3d_retarget.status = "cancelled: the character is as it was"
            self.report({"WARNING"}, context.scene.hp3d_retarget.status)
            return self._finish(context, {"CANCELLED"})
        if event.type != "TIMER":
            return {"PASS_THROUGH"} if event.type in _VIEW_EVENTS else {"RUNNING_MODAL"}
        state = self._step(context, _TICK_S)
        _redraw(context)
        return state

    def cancel(self, context: bpy.types.Context) -> None:
        """Blender is closing or a file is loaded: leave the character as it was."""
        if self._steps is not None:
            self._steps.close()
        self._finish(context, {"CANCELLED"})

    def _finish(self, context: bpy.types.Context, result: set[str]) -> set[str]:
        if self._timer is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        self._steps = None
        props = getattr(context.scene, "hp3d_retarget", None)
        if props is not None:
            props.running, props.progress = False, 1.0 if "FINISHED" in result else 0.0
        _redraw(context)
        return result
