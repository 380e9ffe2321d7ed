"""The engine in a child process (engine.service.ChildRun): `python -m engine.child`, with the
engine's parent folder on PYTHONPATH. Its RunConfig comes as one JSON line on stdin; it prints one
service.Event per line on stdout. A later stdin line "cancel", stdin closing (as when Blender
dies) or SIGTERM cancels: the engine stops between frames and deletes its temporary folder, so
nothing half-written is left. The exit code is the final event's."""

from __future__ import annotations

import json
import signal
import sys
import threading

from .errors import EngineError


def _watch_stdin(cancel: threading.Event) -> None:
    for line in sys.stdin:
        if line.strip() == "cancel":
            break
    cancel.set()


def main() -> int:
    from .service import Event, ending, execute  # light: the pipeline loads inside execute

    def emit(event: Event) -> None:
        sys.stdout.write(event.to_line() + "\n")
        sys.stdout.flush()
        if event.details:  # an internal error: the traceback goes to stderr, which the add-on keeps
            sys.stderr.write(event.details)

    cancel = threading.Event()
    first = sys.stdin.readline()
    threading.Thread(target=_watch_stdin, args=(cancel,), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: cancel.set())
    try:
        from .config import RunConfig
        from .process_memory import hold_mmap_threshold

        cfg = RunConfig.from_json(json.loads(first))
        hold_mmap_threshold()  # this process only runs the engine: keep its peak flat
    except (ValueError, TypeError) as exc:  # not a config: a caller's bug
        emit(ending(EngineError(f"the engine's child got no valid run settings ({exc})")))
        return 1
    except Exception as exc:  # noqa: BLE001: EngineError (a bad value), a missing package
        end = ending(exc)
        emit(end)
        return end.code
    return execute(cfg, emit, cancel).code


if __name__ == "__main__":
    sys.exit(main())
