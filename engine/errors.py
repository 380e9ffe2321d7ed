"""Errors the engine reports to users as one clear line."""


class EngineError(Exception):
    """A problem with the input or environment, described in one line for the user."""


class Cancelled(EngineError):
    """The run was cancelled by the user (Esc in Blender, Ctrl-C on the CLI)."""

    def __init__(self, message: str = "cancelled by the user; nothing was written") -> None:
        super().__init__(message)
