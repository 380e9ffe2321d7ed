"""Child-process entry point for the Run operator:
`PYTHON engine_runner.py VIDEO --height M [engine CLI options]`.

Takes exactly the options of `python -m engine run` and prints one JSON object per line on stdout:
{"progress": f, "message": m} while running, then {"done": OUT_DIR, ...}, {"error": text} or
{"cancelled": true}. A line "cancel" on stdin (or stdin closing, as when Blender dies) cancels:
the engine stops between frames and deletes its temporary folder, so nothing half-written is left.

The add-on folder must be on PYTHONPATH (operators/job.py's child_env puts it there): an extension
edits no sys.path, so the engine is found as the top-level package `engine` that way.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import traceback

EXIT_CANCELLED = 130


def emit(**event) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def _watch_stdin(cancel: threading.Event) -> None:
    for line in sys.stdin:
        if line.strip() == "cancel":
            break
    cancel.set()


def main(argv: list[str]) -> int:
    cancel = threading.Event()
    threading.Thread(target=_watch_stdin, args=(cancel,), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: cancel.set())
    try:
        from engine.cli import build_parser, config_from_args
        from engine.errors import Cancelled, EngineError
        from engine.process_memory import hold_mmap_threshold

        hold_mmap_threshold()  # this process only runs the engine: keep its peak flat
    except ModuleNotFoundError as exc:
        emit(error=f"this Python cannot run the engine ({exc}); set Engine Python in the add-on "
                   "preferences to one with the engine's requirements")
        return 1
    args = build_parser().parse_args(["run", *argv])  # bad options: one line on stderr, exit 2
    try:
        cfg = config_from_args(args)
        from engine.pipeline import run

        result = run(cfg, progress=lambda f, m: emit(progress=round(float(f), 4), message=m),
                     cancel=cancel)
    except Cancelled:
        emit(cancelled=True)
        return EXIT_CANCELLED
    except EngineError as exc:
        emit(error=str(exc))
        return 1
    except ModuleNotFoundError as exc:
        emit(error=f"this Python cannot run the engine ({exc}); set Engine Python in the add-on "
                   "preferences to one with the engine's requirements")
        return 1
    except Exception as exc:  # a bug: the traceback goes to stderr, which the add-on keeps
        traceback.print_exc()
        emit(error=f"internal error ({type(exc).__name__}: {exc})")
        return 3
    rec = result.record
    emit(done=str(result.out_dir), frames=rec["frames"]["read"],
         seconds=rec["timings"]["total_s"], detection_rate=rec["detection_rate"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
