"""Atomic file writes: a crash mid-write never leaves a half-written file behind."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomic(path, write) -> None:
    """Call write(tmp_path) on a temporary file beside `path`, then rename it over `path` in one step."""
    path = Path(path)
    if path.is_symlink():                   # write through a link, not over it
        path = path.resolve()
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:                    # name the file the caller asked for, not the hidden temporary one
        raise type(e)(e.errno, f"cannot write {path} ({e.strerror})") from None
    os.close(fd)
    try:
        write(tmp)
        if path.exists():                   # a file replaced keeps its permissions
            mode = path.stat().st_mode & 0o7777
        else:                               # mkstemp makes 0600; a new file gets the usual permissions
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        remove_quietly(tmp)                 # the real error is the one to report, not a failed cleanup
        raise


def remove_quietly(path) -> None:
    """Delete `path` if it exists; a failure to delete is ignored (the caller has a better error to report)."""
    try:
        Path(path).unlink(missing_ok=True)
    except OSError:
        pass
