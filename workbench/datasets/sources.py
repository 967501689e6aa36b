"""Readers for data kept out of memory: image files, `.npz` members, spilled `tf.data` elements.

Each gives a ``read(indices) -> raw array`` function for `LazyInputs` and a fingerprint of its
source that does not need the whole content read (file names, sizes and modification times).
"""

from __future__ import annotations

import hashlib
import struct
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import DataError

Reader = Callable[[np.ndarray], np.ndarray]
LOCAL_HEADER = 30  # bytes of a zip local file header before its name and extra field


def stat_fingerprint(paths: Iterable[Path], *extra: Any) -> str:
    """A hash of file names, sizes and modification times (and `extra`), not of contents."""
    digest = hashlib.sha256(repr(extra).encode())
    for path in paths:
        stat = path.stat()
        digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def image_reader(files: list[Path], size: tuple[int, int], mode: str) -> Reader:
    """Reads images as uint8 (H, W) or (H, W, 3), converted to `mode` and resized to `size`."""
    from PIL import Image, UnidentifiedImageError

    def read(indices: np.ndarray) -> np.ndarray:
        images = []
        for index in indices:
            file = files[int(index)]
            try:
                with Image.open(file) as image:
                    pixels = np.asarray(image.convert(mode).resize(size))
            except (OSError, UnidentifiedImageError):
                raise DataError(f"{file}: not a readable image; remove or replace it") from None
            images.append(pixels[..., None] if pixels.ndim == 2 else pixels)
        return np.stack(images)

    return read


def npz_member(path: Path, name: str) -> np.memmap | None:
    """A read-only memory map of array `name` in an `.npz`, or None when it is compressed (or
    not a plain array) and so must be read whole."""
    with zipfile.ZipFile(path) as archive:
        try:
            info = archive.getinfo(f"{name}.npy")
        except KeyError:
            return None
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as file:
        file.seek(info.header_offset)
        header = file.read(LOCAL_HEADER)
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        file.seek(info.header_offset + LOCAL_HEADER + name_length + extra_length)
        version = np.lib.format.read_magic(file)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(file)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(file)
        offset = file.tell()
    if fortran or dtype.hasobject or len(shape) == 0:
        return None
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)


def array_reader(array: np.ndarray) -> Reader:
    """Reads rows of an array (a memory map reads only those rows from disk)."""
    return lambda indices: np.asarray(array[indices])


def spill(elements: Iterable[np.ndarray], name: str) -> tuple[np.memmap, Reader, str]:
    """Write elements of one shape and dtype to a temporary file as they come; return a memory
    map of them all, a reader of it (the temporary folder lives as long as the reader) and a
    hash of the content."""
    folder = tempfile.TemporaryDirectory(prefix="workbench-data-")
    path = Path(folder.name) / "x.raw"
    count, first = 0, None
    digest = hashlib.sha256()
    with open(path, "wb") as file:
        for element in elements:
            element = np.asarray(element)
            if first is None:
                first = element
            elif element.shape != first.shape or element.dtype != first.dtype:
                raise DataError(
                    f"data {name!r}: element {count} has shape {element.shape} {element.dtype}, "
                    f"the first {first.shape} {first.dtype}; give elements of one shape"
                )
            data = np.ascontiguousarray(element).tobytes()
            digest.update(data)
            file.write(data)
            count += 1
    if first is None:
        raise DataError(f"data {name!r}: the tf.data.Dataset is empty")
    mapped = np.memmap(path, dtype=first.dtype, mode="r", shape=(count, *first.shape))

    def read(indices: np.ndarray, _folder: Any = folder) -> np.ndarray:  # keeps the folder
        return np.asarray(mapped[indices])

    digest.update(repr((first.dtype.str, first.shape)).encode())
    return mapped, read, digest.hexdigest()[:16]
