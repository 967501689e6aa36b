"""A `.zip` of an image folder (one sub-folder per class, or images only), unpacked to be read as
a folder: how a workshop hands its photos to the dashboard, or to the CLI as ``--data photos.zip``.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from workbench.errors import DataError

MACOS_EXTRAS = "__MACOSX"  # resource forks macOS' Finder adds to a zip


def unpack_images(path: Path, into: Path, limit_bytes: float, what: str) -> Path:
    """Unpack the image folder in the `.zip` at `path` to the new folder `into`: the archive's one
    top folder, or its root. A one-line `DataError` starting with `what` for a file that is not a
    zip, a member outside the archive, or more than `limit_bytes` unpacked; nothing is left then.
    """
    staging = into.parent / f".{into.name}.unpacking"
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            if sum(member.file_size for member in members) > limit_bytes:
                raise DataError(
                    f"{what}: unpacks to more than {limit_bytes / 2**20:g} MB; zip fewer or "
                    "smaller images"
                )
            for member in members:
                if member.filename.startswith("/") or ".." in PurePosixPath(member.filename).parts:
                    raise DataError(
                        f"{what}: member {member.filename!r} points outside the archive; zip the "
                        "image folder itself"
                    )
            archive.extractall(staging)
    except zipfile.BadZipFile:
        shutil.rmtree(staging, ignore_errors=True)
        raise DataError(f"{what}: not a readable .zip archive") from None
    except (DataError, OSError):
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(staging / MACOS_EXTRAS, ignore_errors=True)
    entries = [entry for entry in staging.iterdir() if not entry.name.startswith(".")]
    top = entries[0] if len(entries) == 1 and entries[0].is_dir() else staging
    top.rename(into)
    shutil.rmtree(staging, ignore_errors=True)  # what was left beside the one top folder
    return into


def unpacked(path: Path) -> Path:
    """The image folder of the `.zip` at `path`, unpacked once per version of the file into a
    temporary folder that lasts as long as the process (its images are read on demand)."""
    stat = path.stat()
    return _unpacked(str(path.resolve()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _unpacked(path: str, _mtime_ns: int, _size: int) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="workbench-zip-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    free = shutil.disk_usage(folder).free
    try:
        return unpack_images(Path(path), folder / Path(path).stem, free, f"data {path!r}")
    except DataError:
        shutil.rmtree(folder, ignore_errors=True)
        raise
