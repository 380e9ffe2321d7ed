"""A second process that draws part of the angle figures, so that both cores draw once pose is
done (the figures were about half of a 100-frame run: benchmarks/throughput.py).

It starts while MediaPipe runs (`prepare()`, from biomech.warm_up), imports matplotlib and loads
its fonts there, then waits for one batch of `angle_plots.draw` jobs: pickled on its stdin, one
pickled ("ok" | "error", detail) reply on its stdout. The caller draws its own share meanwhile and,
if the helper failed, died or cannot be started (Blender's own binary is no Python to start),
draws the helper's share itself: the files are the same either way. The helper exits when its
stdin closes, so it never outlives the process that started it.

    python -m engine.figure_worker   (the engine's parent folder on PYTHONPATH)
"""

from __future__ import annotations

import atexit
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

Job = tuple[str, dict]
STALL_S = 20.0  # beyond 5x this process's share, the seconds a helper may lag before it is given up
EXIT_S = 2.0  # an idle helper told to end (its stdin closed) may still be loading matplotlib: then killed

_worker: FigureWorker | None = None
_lock = threading.Lock()
_exit_hook = False


def _python() -> str | None:
    """This interpreter, when it is a Python one can start (inside Blender it may be Blender)."""
    exe = sys.executable or ""
    return exe if Path(exe).name.lower().startswith("python") and os.path.exists(exe) else None


class FigureWorker:
    """One helper process; `run(jobs)` hands it a batch, `result()` waits for the reply."""

    def __init__(self, python: str) -> None:
        from .service import child_env

        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        self.proc = subprocess.Popen([python, "-m", "engine.figure_worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=child_env(python), creationflags=flags)
        self._reply: tuple[str, object] | None = None
        self._reader: threading.Thread | None = None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def run(self, jobs: Sequence[Job]) -> bool:
        """Hand over the batch, in a thread: a helper still loading matplotlib reads its stdin
        only then, and the caller draws its own share meanwhile. False if the helper is gone."""
        if not self.alive():
            return False

        def exchange() -> None:
            try:
                pickle.dump(list(jobs), self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                self.proc.stdin.close()
                self._reply = pickle.load(self.proc.stdout)
            except Exception as exc:  # noqa: BLE001 - died mid-way: the caller draws it instead
                self._reply = ("error", repr(exc))

        self._reader = threading.Thread(target=exchange, name="hp3d-figure-helper", daemon=True)
        self._reader.start()
        return True

    def result(self, cancel: threading.Event | None = None, timeout: float = float("inf")) -> bool:
        """Wait for the reply: True when every job was drawn. A cancel, or no reply within
        `timeout` seconds (a helper that hangs), stops the helper."""
        deadline = time.monotonic() + timeout
        while self._reader is not None and self._reader.is_alive():
            if (cancel is not None and cancel.is_set()) or time.monotonic() > deadline:
                self.close()
                return False
            self._reader.join(0.05)
        self.close()
        return self._reply is not None and self._reply[0] == "ok"

    def close(self) -> None:
        """End the helper: an idle one by closing its stdin (it exits 0); one mid-exchange is
        killed first, since a thread may be blocked writing to its full pipe."""
        if self.proc.poll() is None:
            if self._reader is not None and self._reader.is_alive():
                self.proc.kill()
            else:
                try:
                    self.proc.stdin.close()
                except OSError:
                    pass
            try:
                self.proc.wait(timeout=EXIT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._reader is not None:
            self._reader.join(2)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except (OSError, ValueError):
                pass


def prepare() -> bool:
    """Start the helper if none is waiting (one per process; a run that failed before its figures
    leaves its helper for the next run). True when a helper is waiting now."""
    global _worker, _exit_hook
    python = _python()
    if python is None or os.environ.get("HP3D_FIGURE_WORKER") == "0":
        return False
    with _lock:
        if _worker is not None and _worker.alive():
            return True
        try:
            _worker = FigureWorker(python)
        except OSError:
            _worker = None
            return False
    if not _exit_hook:  # a helper left waiting is stopped at exit rather than on its pipe closing
        atexit.register(shutdown)
        _exit_hook = True
    return True


def take() -> FigureWorker | None:
    """The waiting helper, now the caller's to use and close; None if there is none."""
    global _worker
    with _lock:
        worker, _worker = _worker, None
    return worker if worker is not None and worker.alive() else None


def shutdown() -> None:
    """Stop a waiting helper (interpreter exit closes its stdin anyway)."""
    worker = take()
    if worker is not None:
        worker.close()


def draw_shared(here: Sequence[Job], there: Sequence[Job],
                cancel: threading.Event | None = None) -> bool:
    """Draw `here` in this process and `there` in the helper at the same time; `there` is drawn
    here too when no helper is ready or it fails (an error then surfaces from this process).
    True when the helper drew its share."""
    from .angle_plots import draw

    worker = take()
    sent = worker is not None and worker.run(there)
    t0 = time.monotonic()
    try:
        draw(here)
    except BaseException:
        if worker is not None:
            worker.close()
        raise
    # The shares take about the same time: a helper far behind this process has hung.
    patience = STALL_S + 5 * (time.monotonic() - t0)
    if sent and worker.result(cancel, patience):
        return True
    if worker is not None:
        worker.close()
    if cancel is None or not cancel.is_set():
        draw(there)
    return False


def main() -> int:
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing a library prints may corrupt the reply
    if hasattr(os, "nice"):  # load and wait behind the pose stage, which needs both cores
        os.nice(10)
    from threadpoolctl import threadpool_limits

    from .angle_plots import draw, warm_up

    threadpool_limits(limits=1, user_api="blas")  # as in pipeline.run: no spinning BLAS thread
    warm_up()
    try:
        jobs = pickle.load(sys.stdin.buffer)
    except EOFError:  # the run ended without figures
        return 0
    try:
        draw(jobs)
        reply: tuple[str, object] = ("ok", None)
    except Exception as exc:  # noqa: BLE001 - the caller redraws, and reports a real error itself
        reply = ("error", repr(exc))
    pickle.dump(reply, out)
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
