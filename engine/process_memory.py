"""Give freed memory back to the operating system, so that a long video's peak stays flat.

glibc raises its mmap threshold each time a large block is freed (up to 32 MB), after which large
arrays come from the heap and their memory stays with the process when freed. MediaPipe's frames
and each stage's (frames, joints, 3) temporaries then stack up: a 10-minute video peaked at 2.4 ×
a 1-minute one. With the threshold held at 128 KiB, large arrays are mapped and unmapped, and the
peak is what is alive at once (benchmarks/memory.py).
"""

from __future__ import annotations

import ctypes
import sys

_M_MMAP_THRESHOLD = -3  # mallopt parameter number, from glibc's malloc.h
_THRESHOLD = 128 * 1024  # glibc's starting value, now held fixed


def hold_mmap_threshold() -> bool:
    """For processes that only run the engine (the CLI, the add-on's child): True if set. A no-op
    elsewhere than glibc, and never called inside Blender's own process."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD))
    except (OSError, AttributeError):  # musl or another libc without mallopt
        return False
