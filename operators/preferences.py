"""Add-on preferences: which Python runs the engine."""

from __future__ import annotations

import sys

import bpy
from bpy.props import StringProperty
from bpy.types import AddonPreferences

# The add-on's own package: "bl_ext.<repo>.humanpose3d" as an extension, whatever loads it.
ADDON_PACKAGE = __package__.rpartition(".")[0]


class HP3D_AP_preferences(AddonPreferences):
    bl_idname = ADDON_PACKAGE

    engine_python: StringProperty(
        name="Engine Python", subtype="FILE_PATH", default="",
        description="Python interpreter that runs the engine (needs ai-edge-litert, mediapipe, "
                    "opencv, scipy); empty uses Blender's own Python")

    def draw(self, context: bpy.types.Context) -> None:
        self.layout.prop(self, "engine_python")
        self.layout.label(text=f"Empty: {sys.executable}")


def engine_python(context: bpy.types.Context) -> str:
    addon = context.preferences.addons.get(ADDON_PACKAGE)
    path = addon.preferences.engine_python.strip() if addon and addon.preferences else ""
    return bpy.path.abspath(path) if path else sys.executable  # Blender's own Python
