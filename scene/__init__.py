"""bpy-side builders shared by the operators and headless.py: armature and keyframes (armature,
keyframes), the camera (camera), a finished engine output folder → scene objects (build), FBX
(export), SCAIL's cylinder rig on any armature and its render (scail_rig, scail_render), the
motion retargeted onto a character (retarget; bone_map, retarget_solve in plain numpy).
skeleton.py holds the bone maths in plain numpy."""
