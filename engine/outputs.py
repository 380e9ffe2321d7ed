"""Results appear whole or not at all: written into a hidden temporary folder beside the final
one, then renamed into place."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import EngineError

TMP_PREFIX = ".hp3d-tmp-"
# A result being replaced (--force) waits under this name until the new one is in place; not a
# TMP_PREFIX name, so that a video whose name starts "old-" cannot be mistaken for one.
OLD_PREFIX = ".hp3d-old-"
# A full disk, a quota or a file-size limit: the user's to fix, so one line rather than a bug report.
_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def check_writable(out_dir: Path, final: Path, force: bool) -> None:
    """Fail before any work if the results could not be put in place. Creates nothing: a run
    that fails later must not leave an empty output folder behind."""
    if out_dir.exists() and not out_dir.is_dir():
        raise EngineError(f"output path is a file, not a folder: {out_dir}")
    if final.exists() and not force:
        raise EngineError(f"output already exists: {final} (use --force to replace it)")
    existing = _nearest_existing(out_dir)
    if not existing.is_dir():
        raise EngineError(f"cannot write to output folder {out_dir}: {existing} is a file")
    try:
        # A real write beats os.access: it also catches read-only mounts, immutable folders and
        # ACLs, and it is honest when running as root.
        # The pid suffix tells a parallel run's clean_stale (a batch) that the probe is alive.
        probe = tempfile.mkdtemp(prefix=f"{TMP_PREFIX}probe-", suffix=f"-{os.getpid()}", dir=existing)
        os.rmdir(probe)
    except OSError as exc:
        raise EngineError(f"cannot write to output folder {out_dir}: {exc.strerror or exc}") from None


def _nearest_existing(path: Path) -> Path:
    """`path` itself or its closest ancestor that exists (`.` for a relative path with none)."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists():
            return p
    return Path(".")


def _make_dirs(path: Path) -> list[Path]:
    """mkdir -p that returns the folders it created, outermost first."""
    created = [p for p in (path, *path.parents) if not p.exists()][::-1]
    path.mkdir(parents=True, exist_ok=True)
    return created


def clean_stale(out_dir: Path) -> list[Path]:
    """Remove temporary folders left by runs that were killed (their owner process is gone). A
    previous result that a killed --force run had already moved aside is put back, not deleted."""
    removed = []
    if not out_dir.is_dir():
        return removed
    for p in [*out_dir.glob(TMP_PREFIX + "*"), *out_dir.glob(OLD_PREFIX + "*")]:
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and _alive(int(pid)) and int(pid) != os.getpid():
            continue
        if p.name.startswith(OLD_PREFIX):  # .hp3d-old-<name>-<hex>-<pid>
            final = out_dir / p.name[len(OLD_PREFIX):].rsplit("-", 2)[0]
            if not final.exists():
                try:
                    p.rename(final)
                    continue
                except OSError:
                    pass
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
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
    """Yield a temporary folder; on success rename it to `final`, on any failure delete it (and
    any parent folders this call created)."""
    created = _make_dirs(final.parent)
    # os.mkdir honours the umask (mkdtemp would leave the result private, mode 0700). The pid
    # suffix lets a later run tell a dead run's leftovers from a live one's.
    tagged = final.parent / f"{TMP_PREFIX}{final.name}-{uuid.uuid4().hex[:8]}-{os.getpid()}"
    try:
        os.mkdir(tagged)
    except BaseException:
        _remove_empty(created)
        raise
    try:
        yield tagged
        if final.exists():
            if not force:
                raise EngineError(f"output already exists: {final} (use --force to replace it)")
            old = final.with_name(f"{OLD_PREFIX}{final.name}-{uuid.uuid4().hex[:8]}-{os.getpid()}")
            final.rename(old)
            try:
                tagged.rename(final)
            except BaseException:
                old.rename(final)  # put the previous result back
                raise
            if old.is_dir():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink(missing_ok=True)
        else:
            tagged.rename(final)
    except BaseException as exc:
        shutil.rmtree(tagged, ignore_errors=True)
        _remove_empty(created)
        if isinstance(exc, OSError) and exc.errno in _NO_ROOM:
            raise EngineError(f"cannot write the results in {final.parent}: {exc.strerror} "
                              "(nothing was kept)") from None
        raise


def _remove_empty(folders: list[Path]) -> None:
    for p in reversed(folders):
        try:
            p.rmdir()
        except OSError:
            break
