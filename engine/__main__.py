import os
import sys

from .cli import main
from .process_memory import hold_mmap_threshold

hold_mmap_threshold()  # before the heavy imports and the first frame
code = main()
if code == 130:
    # Cancelled, and main() has said so. CPython would still die by SIGINT (status −2, not 130)
    # if the interrupt had landed inside code run through PyRun_* (pybind11's py::exec during an
    # import): that sets a process-wide "unhandled KeyboardInterrupt" flag that main()'s handler
    # cannot clear. Nothing is left to write or clean up (the staged folder is already gone).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
sys.exit(code)
