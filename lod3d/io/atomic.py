"""Write outputs so that a failure never leaves a half-written file or directory.

Every product is written to a temporary name beside its destination and renamed into
place only when complete (a rename within one filesystem is atomic on POSIX).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import OutputError

__all__ = ["atomic_dir", "atomic_path", "check_output_dir", "remove_path", "replace_dir"]


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left as it was.
    The temporary name keeps the suffix, so drivers chosen by extension still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix + ".part" + path.suffix,
                               dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # drivers want to create the file themselves
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        remove_path(tmp)
        if exc.errno == 28:  # ENOSPC
            raise OutputError(f"{path}: no space left on device") from None
        raise
    except BaseException:
        remove_path(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path, overwrite: bool = False):
    """Yield a temporary directory that becomes ``path`` when the block succeeds.

    With ``overwrite`` an existing ``path`` is replaced only after the new one is complete.
    """
    path = Path(path)
    check_output_dir(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    try:
        yield tmp
        replace_dir(tmp, path)
    except BaseException:
        remove_path(tmp)
        raise


def replace_dir(new, path) -> None:
    """Rename the complete directory ``new`` to ``path``, replacing what was there (the old
    one is first moved aside, so ``path`` is never half one and half the other)."""
    new, path = Path(new), Path(path)
    if path.exists():
        old = path.with_name(f".{path.name}.old")
        remove_path(old)
        os.replace(path, old)
        os.replace(new, path)
        remove_path(old)
    else:
        os.replace(new, path)


def check_output_dir(path, overwrite: bool = False) -> None:
    """Refuse an output directory that is a file, non-empty (unless ``overwrite``) or unwritable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise OutputError(f"{path}: output directory is not empty (use --overwrite)")
    parent = path if path.is_dir() else _existing_ancestor(path)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: not writable")


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists():
        path = path.parent
    if not path.is_dir():
        raise OutputError(f"{path}: is a file, cannot create a directory under it")
    return path


def remove_path(path) -> None:
    """Remove a file or a directory tree, if there is one (links are unlinked, not followed)."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
