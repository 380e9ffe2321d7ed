"""One way to run the engine for every caller (the CLI, headless.py, the add-on's operators): a
RunConfig in, events out (stage, fraction, message while it runs, then one final event), in this
process or in a child process of another Python (`engine/child.py`), cancellable either way. How a
run's ending maps to a message and an exit code is decided here, once.

    handle = start(cfg)                 # a thread here; start(cfg, python) for a child process
    for event in handle.poll(): ...     # non-blocking (a modal operator's timer)
    end = wait(handle, on_event)        # or blocking (the CLI, background Blender)
"""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import queue
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TextIO

from .config import RunConfig
from .errors import Cancelled, EngineError

EXIT_FAILED, EXIT_INTERNAL, EXIT_CANCELLED = 1, 3, 130
# The folder that holds the `engine` package (the add-on's own folder inside Blender), which a
# child process of any Python imports it from as the top-level `engine`.
ENGINE_PARENT = Path(__file__).resolve().parents[1]
CANCELLED = "cancelled; nothing was written"


@dataclass(frozen=True)
class Event:
    """What a run reports: `progress` events, then exactly one of `done`, `error`, `cancelled`."""

    kind: str
    fraction: float = 0.0  # of the whole run, 0 → 1
    stage: str = ""  # engine.progress.WEIGHTS' names: pose, reconstruct, scail, biomechanics, mesh
    message: str = ""  # progress: what is happening; error: the one line for the user
    out_dir: str = ""  # done: the result folder
    frames: int = 0
    seconds: float = 0.0
    detection_rate: float = 0.0
    code: int = 0  # the exit code this ending maps to
    details: str = ""  # an internal error's traceback

    @property
    def final(self) -> bool:
        return self.kind != "progress"

    def to_line(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_line(cls, line: str) -> Event | None:
        """The event a child printed, or None for any other line (a library's stray print)."""
        try:
            data = json.loads(line)
            return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})
        except (ValueError, TypeError, KeyError):
            return None


def ending(exc: BaseException) -> Event:
    """The final event of a run that raised `exc`: its one line and exit code."""
    if isinstance(exc, KeyboardInterrupt | Cancelled):
        return Event("cancelled", message=CANCELLED, code=EXIT_CANCELLED)
    if isinstance(exc, EngineError):
        return Event("error", message=str(exc), code=EXIT_FAILED)
    if isinstance(exc, MemoryError):
        return Event("error", message="out of memory (try --frames to process part of the video)",
                     code=EXIT_FAILED)
    if isinstance(exc, ModuleNotFoundError):
        return Event("error", code=EXIT_FAILED, message=(
            f"this Python cannot run the engine ({exc}): give it the engine's requirements, or choose "
            "one that has them (the add-on's Engine Python preference, headless.py's --engine-python)"))
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return Event("error", message=f"{exc.strerror or exc}{where}", code=EXIT_FAILED)
    return Event("error", message=f"internal error ({type(exc).__name__}: {exc})", code=EXIT_INTERNAL,
                 details="".join(traceback.format_exception(exc)))


def execute(cfg: RunConfig, on_event: Callable[[Event], None],
            cancel: threading.Event | None = None) -> Event:
    """Run `cfg` in this thread, passing every event to `on_event`; returns the final one. A run
    that fails or is cancelled (Ctrl-C included) does not raise: its event says how it ended."""
    from .progress import Progress, stages

    cancel = cancel or threading.Event()
    bar = Progress(None, stages(cfg))

    def progress(fraction: float, message: str) -> None:
        on_event(Event("progress", round(float(fraction), 4), bar.stage_at(fraction), message))

    try:
        from .pipeline import run  # heavy imports (cv2, LiteRT, mediapipe) only here

        result = run(cfg, progress=progress, cancel=cancel)
    except (KeyboardInterrupt, Exception) as exc:  # noqa: BLE001: every ending becomes one event
        if isinstance(exc, KeyboardInterrupt):
            cancel.set()
        end = ending(exc)
    else:
        rec = result.record
        end = Event("done", 1.0, message="done", out_dir=str(result.out_dir), frames=rec["frames"]["read"],
                    seconds=rec["timings"]["total_s"], detection_rate=rec["detection_rate"])
    on_event(end)
    return end


class _Run:
    """What both kinds of run share: an event queue, the final event, a one-line reason."""

    def __init__(self) -> None:
        self._events: queue.Queue[Event] = queue.Queue()
        self.outcome: Event | None = None
        self.cancel_requested_at: float | None = None

    def poll(self) -> list[Event]:
        """The events since the last poll; never blocks."""
        out = []
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return out
            out.append(event)
            if event.final:
                self.outcome = event

    def error_text(self) -> str:
        if self.outcome is not None and self.outcome.kind != "done":
            return self.outcome.message
        return "the engine stopped without a result"

    def kill_if_stuck(self, grace_s: float = 5.0) -> bool:  # noqa: ARG002: a thread cannot be killed
        return False

    def kill(self) -> None:
        self.cancel()

    def cancel(self) -> None:
        raise NotImplementedError

    @property
    def finished(self) -> bool:
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> None:
        raise NotImplementedError


class LocalRun(_Run):
    """The engine in a thread of this process (the CLI; background Blender whose Python has the
    engine's requirements)."""

    def __init__(self, cfg: RunConfig) -> None:
        super().__init__()
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=execute, args=(cfg, self._events.put, self._cancel),
                                        name="humanpose3d-engine", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        if self.cancel_requested_at is None:
            self.cancel_requested_at = time.monotonic()
        self._cancel.set()  # the engine checks it between frames and chunks

    @property
    def finished(self) -> bool:
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)


def _same_interpreter(python: str) -> bool:
    """`python` is the interpreter running us (as written, not resolved: two venvs share one binary)."""
    return os.path.normcase(os.path.abspath(python)) == os.path.normcase(os.path.abspath(sys.executable))


def child_env(python: str) -> dict[str, str]:
    """A child's environment: the engine's parent folder on PYTHONPATH (the add-on edits no
    sys.path), and with this same Python also this process's sys.path, since Blender adds the
    site-packages of the extension's wheels (extensions/.local/lib/pythonX.Y/site-packages) only
    inside Blender."""
    paths = [str(ENGINE_PARENT)]
    if _same_interpreter(python):
        paths += [p for p in sys.path if p and os.path.exists(p)]  # zips count too
    paths += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(dict.fromkeys(paths)), PYTHONUNBUFFERED="1",
                PYTHONIOENCODING="utf-8")


class ChildRun(_Run):
    """The engine in a child process of `python` (`python -m engine.child`): the add-on's
    interactive runs (a crash or a busy interpreter there never touches Blender's UI) and any run
    whose engine needs another Python. Reader threads turn its JSON lines into events."""

    def __init__(self, cfg: RunConfig, python: str) -> None:
        super().__init__()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # no console window on Windows
        self.proc = subprocess.Popen(
            [python, "-u", "-m", "engine.child"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace", bufsize=1,
            env=child_env(python), creationflags=flags)
        try:
            self.proc.stdin.write(json.dumps(cfg.to_json()) + "\n")  # its config: the first line
            self.proc.stdin.flush()
        except OSError:  # it died at once; its stderr says why
            pass
        self._readers = [threading.Thread(target=self._read_stdout, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for t in self._readers:
            t.start()

    def _read_stdout(self) -> None:
        for line in self.proc.stdout:
            if not line.strip():
                continue
            event = Event.from_line(line)
            if event is None:  # stray prints from a library: keep them with stderr
                self.stderr_tail.append(line.rstrip())
            else:
                self._events.put(event)

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            if line.strip():
                self.stderr_tail.append(line.rstrip())

    @property
    def finished(self) -> bool:
        """The child has exited and everything it printed has been read."""
        return self.proc.poll() is not None and not any(t.is_alive() for t in self._readers)

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def cancel(self) -> None:
        if self.cancel_requested_at is None:
            self.cancel_requested_at = time.monotonic()
        try:
            self.proc.stdin.write("cancel\n")
            self.proc.stdin.flush()
            self.proc.stdin.close()
        except (OSError, ValueError):  # already exited or closed
            pass

    def kill_if_stuck(self, grace_s: float = 5.0) -> bool:
        """Kill a child that has not stopped within `grace_s` of a cancel (the engine checks
        between frames; a frame takes tens of milliseconds)."""
        if self.cancel_requested_at is None or self.proc.poll() is not None:
            return False
        if time.monotonic() - self.cancel_requested_at < grace_s:
            return False
        self.kill()
        return True

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def wait(self, timeout: float | None = None) -> None:
        self.proc.wait(timeout=timeout)
        for t in self._readers:
            t.join(timeout=5)

    def error_text(self) -> str:
        """The child's own message, else its last stderr line, else its exit code."""
        if self.outcome is not None and self.outcome.kind != "done":
            return self.outcome.message
        lines = [ln for ln in self.stderr_tail if ln.strip()]
        return lines[-1] if lines else f"engine exited with code {self.returncode}"


Run = LocalRun | ChildRun


def can_run_here(python: str | None = None) -> bool:
    """Whether this process can run the engine itself: `python` (if given) is this interpreter
    and the pose stage's packages are importable here."""
    return (python is None or _same_interpreter(python)) and all(
        importlib.util.find_spec(p) is not None for p in ("ai_edge_litert", "mediapipe"))


def start(cfg: RunConfig, python: str | None = None) -> Run:
    """Start a run: in a thread here, or in a child process of `python` (OSError if it cannot
    be started)."""
    return LocalRun(cfg) if python is None else ChildRun(cfg, python)


def wait(run: Run, on_event: Callable[[Event], None] | None = None, poll_s: float = 0.05) -> Event:
    """Block until `run` ends, passing each event to `on_event`; returns the final event. Ctrl-C
    cancels the run (a child is never orphaned) and is raised again."""
    on_event = on_event or (lambda e: None)
    try:
        while not run.finished:
            for event in run.poll():
                on_event(event)
            run.kill_if_stuck()
            time.sleep(poll_s)
    except KeyboardInterrupt:
        run.cancel()
        run.wait(timeout=10)
        raise
    run.wait(timeout=10)
    for event in run.poll():
        on_event(event)
    if run.outcome is None and run.cancel_requested_at is not None:  # killed after a cancel
        run.outcome = Event("cancelled", message=CANCELLED, code=EXIT_CANCELLED)
    elif run.outcome is None:  # a child that died without a word (a crash)
        run.outcome = Event("error", message=run.error_text(), code=EXIT_FAILED)
    return run.outcome


def tenths(prefix: str, stream: TextIO | None = None) -> Callable[[Event], None]:
    """An on_event printing one line per tenth of the run (for logs: background runs have no
    progress bar)."""
    shown = [-1]

    def on_event(event: Event) -> None:
        if event.kind == "progress" and int(event.fraction * 10) > shown[0]:
            shown[0] = int(event.fraction * 10)
            print(f"{prefix} {100 * event.fraction:3.0f} % {event.message}", file=stream or sys.stderr,
                  flush=True)

    return on_event
