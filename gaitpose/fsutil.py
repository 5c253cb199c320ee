"""Atomic file writing: a crash never leaves a half-written file under its final name."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gaitpose.jsonutil import dumps


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it into place only if the block succeeds.

    The temporary name keeps the final suffix (so encoders such as cv2.imwrite pick the right
    format) and lives in the same directory (so the rename is atomic on POSIX).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    suffix = final.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=".part" + suffix, dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600; published files get the usual umask-based mode (e.g. 0644).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (model files are hashed for provenance)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike[str], obj: Any, indent: int | None = None) -> None:
    """Strict JSON through the one encoder (``gaitpose.jsonutil``: NaN -> null, numpy -> plain)."""
    write_text_atomic(path, dumps(obj, indent=indent))


RESULT_MARKER = ".gaitpose-result"
"""File written into every folder built by :func:`staged_dir`: it marks the folder as replaceable.

A later run with the same output folder may replace a marked folder; a folder without it holds
somebody's own files, and gaitpose never deletes those unless told to (``--overwrite``).
"""


def is_result_dir(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a folder that a previous gaitpose run produced (it carries the marker)."""
    return (Path(path) / RESULT_MARKER).is_file()


def _replaceable(final: Path, overwrite: bool) -> str | None:
    """Why ``final`` must not be replaced by a staged folder, or None when it may be."""
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        return "exists and is not a folder (a file or a link); choose another output folder"
    if not final.exists() or overwrite or is_result_dir(final):
        return None
    if any(final.iterdir()):
        return ("folder exists and holds files that are not a gaitpose result; choose another output "
                "folder or pass --overwrite to replace it")
    return None


def check_out_dir(path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Pre-flight check of an output folder, before any long work; returns the path.

    Raises :class:`gaitpose.errors.InputError` (one line naming the path and the reason) when the
    folder is the current folder or one of its parents, is a file, is an existing folder that is not
    a marked gaitpose result (unless ``overwrite``), or cannot be created where asked. Why here and
    not at the end: a user must not wait for a whole analysis to learn that its output has nowhere
    to go, and must never lose their own files to it.
    """
    from gaitpose.errors import InputError

    final = Path(path)
    target = final.resolve()
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise InputError(final, "is the current folder or one of its parents; name a new folder for the results")
    why = _replaceable(final, overwrite)
    if why:
        raise InputError(final, why)
    # The folder is staged beside its final name, so its (nearest existing) parent must be writable.
    parent = target.parent
    while not parent.exists():
        if parent.is_symlink():
            raise InputError(final, f"cannot create the folder: {parent} is a broken link")
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(final, f"cannot create the folder: {parent} is not a folder")
    try:  # a real probe: os.access says yes to root on read-only or special file systems
        probe = tempfile.mkdtemp(prefix=".gaitpose-probe.", dir=parent)
    except OSError as exc:
        raise InputError(final, f"cannot write in {parent} ({exc.strerror or exc})") from None
    os.rmdir(probe)
    return final


@contextlib.contextmanager
def staged_dir(final: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Build a whole output folder under a temporary name and move it into place at the end.

    Used by commands whose output is a set of files (``analyze``): either all of them appear
    under the final name or, on error, none do and no half-written folder is left behind. The
    staged folder carries :data:`RESULT_MARKER`. An existing ``final`` folder is replaced only
    after the new one is complete, and only when it is empty, a marked result, or ``overwrite``
    is set; a file (or link) under the final name is never moved aside. Both are checked before
    and after the work, so a refusal costs no work and a race cannot lose files.
    """
    from gaitpose.errors import InputError

    final = Path(final)
    why = _replaceable(final, overwrite)
    if why:
        raise InputError(final, why)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; the published folder gets the usual mode
    try:
        (tmp / RESULT_MARKER).write_text("gaitpose result folder: the next run with this output folder replaces it\n")
        yield tmp
        why = _replaceable(final, overwrite)
        if why:
            raise InputError(final, why)
        if final.exists():
            # A fresh, uniquely named empty folder to swap into: never a name a user's file could hold.
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
