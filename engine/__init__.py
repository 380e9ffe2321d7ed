"""HumanPose3D engine: one video of a person → metric 3D markers and files. Never imports bpy."""

__version__ = "0.1.0"
