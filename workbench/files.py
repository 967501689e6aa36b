"""Atomic file writes: a temporary file in the target's folder, renamed into place."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: Path, write: Callable[[str], object]) -> None:
    """Call `write(temporary_path)`, then rename it to `path`; on failure nothing is left.

    Missing folders are created. The temporary name keeps `path`'s suffix (Keras chooses the
    format by it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix
    )
    os.close(handle)
    try:
        write(temporary)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    write_atomically(path, lambda temporary: Path(temporary).write_bytes(data))
