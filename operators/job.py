"""An engine run in a child process, polled without blocking (no bpy here, so it is testable on
its own). Reader threads turn the child's JSON lines into events; the modal operator drains them
on a timer."""

from __future__ import annotations

import collections
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

RUNNER = Path(__file__).resolve().with_name("engine_runner.py")
ADDON_ROOT = RUNNER.parents[1]  # the runner imports the engine from here as the top-level `engine`


def _same_interpreter(python: str) -> bool:
    """`python` is the interpreter running us (as written, not resolved: two venvs share one binary)."""
    return os.path.normcase(os.path.abspath(python)) == os.path.normcase(os.path.abspath(sys.executable))


def child_env(python: str) -> dict[str, str]:
    """The child's environment: the add-on folder on PYTHONPATH (the runner edits no sys.path), and
    with Blender's own Python also this process's sys.path, since Blender adds the site-packages of
    the extension's wheels (extensions/.local/lib/pythonX.Y/site-packages) only inside Blender."""
    paths = [str(ADDON_ROOT)]
    if _same_interpreter(python):
        paths += [p for p in sys.path if p and os.path.exists(p)]  # zips count too
    paths += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(dict.fromkeys(paths)), PYTHONUNBUFFERED="1",
                PYTHONIOENCODING="utf-8")


class EngineJob:
    """Start `python RUNNER args…`; `poll()` returns new events, `cancel()` asks the child to stop
    (and `kill_if_stuck()` makes sure it does)."""

    def __init__(self, python: str, args: list[str]) -> None:
        self.events: queue.Queue[dict] = queue.Queue()
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=40)
        self.cancel_requested_at: float | None = None
        self.outcome: dict = {}  # the final event: {"done": …}, {"error": …} or {"cancelled": …}
        env = child_env(python)
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # no console window on Windows
        self.proc = subprocess.Popen(
            [python, "-u", str(RUNNER), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace", bufsize=1,
            env=env, creationflags=flags)
        self._readers = [threading.Thread(target=self._read_stdout, daemon=True),
                         threading.Thread(target=self._read_stderr, daemon=True)]
        for t in self._readers:
            t.start()

    def _read_stdout(self) -> None:
        for line in self.proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError:  # stray prints from a library: keep them with stderr
                self.stderr_tail.append(line)
                continue
            if isinstance(event, dict):
                self.events.put(event)

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            if line.strip():
                self.stderr_tail.append(line.rstrip())

    def poll(self) -> list[dict]:
        out = []
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            out.append(event)
            if {"done", "error", "cancelled"} & event.keys():
                self.outcome = event
        return out

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

    def wait(self, timeout: float | None = None) -> int:
        rc = self.proc.wait(timeout=timeout)
        for t in self._readers:
            t.join(timeout=5)
        return rc

    def error_text(self) -> str:
        """One line explaining a failure: the child's own message, else its last stderr line."""
        if "error" in self.outcome:
            return str(self.outcome["error"])
        lines = [ln for ln in self.stderr_tail if ln.strip()]
        if lines:
            return lines[-1]
        return f"engine exited with code {self.returncode}"


def run_blocking(job: EngineJob, on_event=None, poll_s: float = 0.1) -> dict:
    """Wait for `job` (background mode, headless.py), passing each event to `on_event`; returns
    the outcome. Ctrl-C cancels the child rather than orphaning it."""
    try:
        while not job.finished:
            for event in job.poll():
                if on_event is not None:
                    on_event(event)
            job.kill_if_stuck()
            time.sleep(poll_s)
    except KeyboardInterrupt:
        job.cancel()
        job.wait(timeout=10)
        raise
    job.wait(timeout=10)
    for event in job.poll():
        if on_event is not None:
            on_event(event)
    return job.outcome or {"error": job.error_text()}


def default_python() -> str:
    """The interpreter running us: Blender's bundled Python inside Blender (2.91+), the venv's
    with the bpy module."""
    return sys.executable
