"""How many threads the pose stage's XNNPACK uses: one per core this process may run on, up to 4,
or `HP3D_THREADS`, which a batch worker sets to 1 (Ray gives each video one CPU; XNNPACK's waiting
threads spin, so two videos with two threads each on two cores ran slower than one after another).
"""

from __future__ import annotations

import os

THREADS_ENV = "HP3D_THREADS"


def threads() -> int:
    # measured on 2 cores, the pose stage: 2 threads 69 frames/s, 4 threads 49, 1 thread 50
    if os.environ.get(THREADS_ENV, "").isdigit():
        return max(1, int(os.environ[THREADS_ENV]))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))
