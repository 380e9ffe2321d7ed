"""Sidebar UI and the scene's property group."""

from __future__ import annotations

import bpy

from . import properties, sidebar

_CLASSES = (sidebar.HP3D_PT_main,)


def register() -> None:
    properties.register()
    for cls in _CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
    properties.unregister()
