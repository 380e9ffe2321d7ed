"""bpy-side builders shared by the operators and headless.py: armature and keyframes (armature,
keyframes), the camera (camera), a finished engine output folder → scene objects (build), FBX
(export). skeleton.py holds the bone maths in plain numpy."""
