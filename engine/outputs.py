"""Results appear whole or not at all: written into a hidden temporary folder beside the final
one, then renamed into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import EngineError

TMP_PREFIX = ".hp3d-tmp-"


def check_writable(out_dir: Path, final: Path, force: bool) -> None:
    """Fail before any work if the results could not be put in place."""
    if out_dir.exists() and not out_dir.is_dir():
        raise EngineError(f"output path is a file, not a folder: {out_dir}")
    if final.exists() and not force:
        raise EngineError(f"output already exists: {final} (use --force to replace it)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=TMP_PREFIX, dir=out_dir)
        os.rmdir(probe)
    except OSError as exc:
        raise EngineError(f"cannot write to output folder {out_dir}: {exc.strerror or exc}") from None


def clean_stale(out_dir: Path) -> list[Path]:
    """Remove temporary folders left by runs that were killed (their owner process is gone)."""
    removed = []
    if not out_dir.is_dir():
        return removed
    for p in out_dir.glob(TMP_PREFIX + "*"):
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and _alive(int(pid)) and int(pid) != os.getpid():
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def staged_folder(final: Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder; on success rename it to `final`, on any failure delete it."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{final.name}-", dir=final.parent))
    # The pid suffix lets a later run tell a dead run's leftovers from a live one's.
    tagged = tmp.with_name(f"{tmp.name}-{os.getpid()}")
    tmp.rename(tagged)
    try:
        yield tagged
        if final.exists():
            if not force:
                raise EngineError(f"output already exists: {final} (use --force to replace it)")
            old = final.with_name(f"{TMP_PREFIX}old-{final.name}-{os.getpid()}")
            final.rename(old)
            tagged.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tagged.rename(final)
    except BaseException:
        shutil.rmtree(tagged, ignore_errors=True)
        raise
