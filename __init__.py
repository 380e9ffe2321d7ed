"""HumanPose3D Blender extension: video of a person → metric 3D markers and an animated armature.

Loaded by Blender as `bl_ext.<repo>.humanpose3d`; imports stay relative. The UI modules are
imported in register() so that the package (and its bpy-free engine/) imports without bpy, e.g.
for headless.py's --help or the engine's child process.
"""


def register() -> None:
    from . import operators, panels

    panels.register()
    operators.register()


def unregister() -> None:
    from . import operators, panels

    operators.unregister()
    panels.unregister()
