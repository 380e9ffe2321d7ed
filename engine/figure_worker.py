"""A second process that draws the angle figures, so that both cores draw once pose is done
(the figures were about half of a 100-frame run: benchmarks/throughput.py).

It starts while the pose stage runs (`prepare()`, from biomech.warm_up), imports matplotlib and
loads its fonts there, then waits for one batch of figures: a pickled list of shares (each a list
of `angle_plots.draw` jobs) on its stdin, one pickled ("ok" | "error", detail) reply on its stdout.
On Linux it forks once per extra share, so every share is drawn by a warm process at once and
this process draws nothing (nor imports matplotlib: about 0.8 s cold); elsewhere the caller draws
its own share meanwhile. If the helper fails, dies or cannot be started (Blender's own binary is
no Python to start), the caller draws the rest itself: the files are the same either way. The
helper exits when its stdin closes, so it never outlives the process that started it, and its
forks die with it.

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
# Forks are safe in the helper (no threads: its BLAS is held to one) and need no second start
# and import. macOS and Windows have no fork worth trusting.
FORKS = sys.platform.startswith("linux")
# Where this process draws nothing, a helper's pace is judged by the data: figures took about
# 1 s + 0.1 ms a frame (benchmarks/throughput.py's machine; 5 s at 36,000 frames).
_DRAW_S, _DRAW_S_PER_FRAME = 1.0, 1e-4
EXIT_S = 2.0  # an idle helper told to end (its stdin closed) may still be loading matplotlib: then killed

_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

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
        # No BLAS threads at all: numpy's would otherwise exist, and spin, when the helper forks.
        env = {**child_env(python), **dict.fromkeys(_BLAS_THREADS, "1")}
        self.proc = subprocess.Popen([python, "-m", "engine.figure_worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     env=env, creationflags=flags)
        self._reply: tuple[str, object] | None = None
        self._reader: threading.Thread | None = None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def run(self, shares: Sequence[Sequence[Job]]) -> bool:
        """Hand over the shares, in a thread: a helper still loading matplotlib reads its stdin
        only then, and the caller may draw meanwhile. False if the helper is gone."""
        if not self.alive():
            return False

        def exchange() -> None:
            try:
                pickle.dump([list(jobs) for jobs in shares], self.proc.stdin,
                            protocol=pickle.HIGHEST_PROTOCOL)
                self.proc.stdin.close()
                self._reply = pickle.load(self.proc.stdout)
            except Exception as exc:  # noqa: BLE001 - died mid-way: the caller draws it instead
                self._reply = ("error", repr(exc))

        self._reader = threading.Thread(target=exchange, name="hp3d-figure-helper", daemon=True)
        self._reader.start()
        return True

    def result(self, cancel: threading.Event | None = None, timeout: float = float("inf")) -> bool:
        """Wait for the reply: True when every job was drawn (`processes`: by how many). A
        cancel, or no reply within `timeout` seconds (a helper that hangs), stops the helper."""
        deadline = time.monotonic() + timeout
        while self._reader is not None and self._reader.is_alive():
            if (cancel is not None and cancel.is_set()) or time.monotonic() > deadline:
                self.close()
                return False
            self._reader.join(0.05)
        self.close()
        return self._reply is not None and self._reply[0] == "ok"

    @property
    def processes(self) -> int:
        """How many processes drew the helper's shares (its reply's detail)."""
        ok = self._reply is not None and self._reply[0] == "ok" and isinstance(self._reply[1], int)
        return self._reply[1] if ok else 0

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


def _frames(jobs: Sequence[Job]) -> int:
    return max((len(kw.get("time_s", ())) for _, kw in jobs), default=0)


def draw_shared(here: Sequence[Job], there: Sequence[Job],
                cancel: threading.Event | None = None) -> int:
    """Draw `here` and `there` at the same time: both in the helper's processes where it forks,
    else `here` in this process and `there` in the helper. Whatever no helper drew (none ready,
    or it failed) is drawn here (an error then surfaces from this process). Returns how many
    processes drew the figures."""
    from .angle_plots import draw

    worker = take()
    if worker is not None and FORKS:
        if worker.run([here, there]):
            patience = STALL_S + 5 * (_DRAW_S + _DRAW_S_PER_FRAME * _frames([*here, *there]))
            if worker.result(cancel, patience):
                return worker.processes
        worker.close()
        if cancel is None or not cancel.is_set():
            draw([*here, *there])
        return 1
    sent = worker is not None and worker.run([there])
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
        return 1 + worker.processes
    if worker is not None:
        worker.close()
    if cancel is None or not cancel.is_set():
        draw(there)
    return 1


def _die_with_parent() -> None:
    """Be killed when the parent ends (Linux): a fork with its helper, so a helper killed mid-way
    (a cancel, a hang) leaves no process writing figures the caller may be drawing itself; the
    helper with the run's process, so a run killed outright (the add-on's last resort) leaves no
    helper drawing into the folder that run was writing."""
    import ctypes
    import signal

    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent ended before the request took effect
        os._exit(1)


def draw_forked(shares: Sequence[Sequence[Job]]) -> int:
    """Draw every share at once: the extra ones in forks of this process, the first here; a
    share whose fork failed is drawn here after. Returns how many processes drew."""
    from .angle_plots import draw

    children: dict[int, Sequence[Job]] = {}
    for jobs in shares[1:]:
        try:
            pid = os.fork() if FORKS else -1
        except OSError:  # no memory or process slot for it: drawn here
            pid = -1
        if pid == 0:
            code = 1
            try:
                _die_with_parent()
                draw(jobs)
                code = 0
            finally:
                os._exit(code)  # no atexit, no flushing of the parent's buffers
        if pid > 0:
            children[pid] = jobs
        else:
            draw(jobs)
    draw(shares[0] if shares else [])
    processes = 1
    for pid, jobs in children.items():
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) == 0:
            processes += 1
        else:
            draw(jobs)
    return processes


def main() -> int:
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing a library prints may corrupt the reply
    if hasattr(os, "nice"):  # load and wait behind the pose stage, which needs both cores
        os.nice(10)
    if FORKS:  # Linux: its stdin closing ends a waiting helper, this one a drawing one too
        _die_with_parent()
    from threadpoolctl import threadpool_limits

    from .angle_plots import warm_up

    threadpool_limits(limits=1, user_api="blas")  # as in pipeline.run: no spinning BLAS thread
    warm_up()
    try:
        shares = pickle.load(sys.stdin.buffer)
    except EOFError:  # the run ended without figures
        return 0
    try:
        reply: tuple[str, object] = ("ok", draw_forked(shares))
    except Exception as exc:  # noqa: BLE001 - the caller redraws, and reports a real error itself
        reply = ("error", repr(exc))
    pickle.dump(reply, out)
    out.flush()
    # The caller waits for this exit: skip the interpreter's teardown of matplotlib (0.1-0.2 s).
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
