"""Operators, one per file: thin wrappers that gather the panel's settings, hand them to the
engine's run service (engine/service.py) and its output folder to the scene builders (scene/).
settings.py (the panel as a RunConfig) and scail_setup.py (the SCAIL panel as a rig) are what
they share. The engine (cv2, LiteRT, mediapipe) is imported only when a run starts."""

from __future__ import annotations


def _classes() -> tuple:
    from . import (
        cancel,
        export_fbx,
        import_result,
        import_sam3d,
        preferences,
        retarget,
        retarget_detect,
        retarget_export_fbx,
        retarget_preset_load,
        retarget_preset_save,
        run,
        scail_build,
        scail_render,
        view_add,
        view_remove,
    )

    return (preferences.HP3D_AP_preferences, run.HP3D_OT_run, cancel.HP3D_OT_cancel,
            view_add.HP3D_OT_view_add, view_remove.HP3D_OT_view_remove,
            export_fbx.HP3D_OT_export_fbx, import_result.HP3D_OT_import_result,
            import_sam3d.HP3D_OT_import_sam3d,
            scail_build.HP3D_OT_scail_build, scail_render.HP3D_OT_scail_render,
            retarget.HP3D_OT_retarget, retarget_export_fbx.HP3D_OT_retarget_export_fbx,
            retarget_detect.HP3D_OT_retarget_detect, retarget_preset_save.HP3D_OT_retarget_preset_save,
            retarget_preset_load.HP3D_OT_retarget_preset_load)


def register() -> None:
    import bpy

    for cls in _classes():
        bpy.utils.register_class(cls)


def unregister() -> None:
    import bpy

    from . import run

    live = run.active_run()
    if live is not None:  # disabling the add-on mid-run must not orphan the child
        live.cancel()
        live.kill()
        run._ACTIVE["run"] = None
    for cls in reversed(_classes()):
        bpy.utils.unregister_class(cls)
