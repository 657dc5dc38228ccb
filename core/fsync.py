"""Durability for files replaced by rename: the new file's bytes, then the directory entry, reach the disk.

A rename is atomic for readers but not durable by itself: after a power loss the directory may still name the old
file, or the new name may point at blocks never written. Writers fsync the temp file before the rename and the
directory after it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_directory(directory: Path) -> None:
    # Not every platform can open a directory; the rename itself has happened either way.
    with contextlib.suppress(OSError):
        fsync_file(directory)
