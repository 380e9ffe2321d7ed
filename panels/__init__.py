"""Sidebar UI and the scene's property group."""

from __future__ import annotations

import bpy

from . import properties, retarget, scail, sidebar

_CLASSES = (*sidebar.LISTS, *sidebar.CLASSES)  # lists first; then the main panel, then its sub-panels


def register() -> None:
    properties.register()
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    scail.register()  # its sub-panel needs HP3D_PT_main registered, and comes after ours
    retarget.register()


def unregister() -> None:
    retarget.unregister()
    scail.unregister()
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
    properties.unregister()
