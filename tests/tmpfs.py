"""Small tmpfs file systems for tests that fill a disk (mounting needs root)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def tmpfs(size: str) -> Iterator[Path]:
    """A new tmpfs of ``size`` (``"16m"``) at a new folder under the temporary folder (any
    user can traverse that, so a PostgreSQL server can reach it), unmounted afterwards;
    skips the test when mounting is not permitted."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    point = Path(tempfile.mkdtemp(prefix="mixedfit-tmpfs-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                           str(point)], capture_output=True, text=True)
    if done.returncode != 0:
        point.rmdir()
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=True)
        point.rmdir()


def fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` to the last byte with a file; its path."""
    path = folder / "filler"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 4096, 1):  # big writes, then what is left
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return path
