"""Operators: thin wrappers that gather the panel's settings, run the engine and hand its output
folder to the scene builders. The engine (cv2, mediapipe) is imported only when a run starts, and
bpy only at registration, so job.py and engine_runner.py import anywhere."""

from __future__ import annotations


def _classes() -> tuple:
    from . import import_result, import_sam3d, preferences, retarget, retarget_map, run, scail, views

    return (preferences.HP3D_AP_preferences, run.HP3D_OT_run, run.HP3D_OT_cancel, *views.CLASSES,
            import_result.HP3D_OT_import_result, import_sam3d.HP3D_OT_import_sam3d, *scail.CLASSES,
            *retarget.CLASSES, *retarget_map.CLASSES)


def register() -> None:
    import bpy

    for cls in _classes():
        bpy.utils.register_class(cls)


def unregister() -> None:
    import bpy

    from . import run

    job = run.active_job()
    if job is not None:  # disabling the add-on mid-run must not orphan the child
        job.cancel()
        job.kill()
        run._ACTIVE["job"] = None
    for cls in reversed(_classes()):
        bpy.utils.unregister_class(cls)
