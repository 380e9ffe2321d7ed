import sys

from .cli import main
from .process_memory import hold_mmap_threshold

hold_mmap_threshold()  # before the heavy imports and the first frame
sys.exit(main())
