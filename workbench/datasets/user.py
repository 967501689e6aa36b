"""User data: `.npz` files, image folders, numpy arrays and `tf.data` datasets.

Arrays are preprocessed and split in memory. Image folders, uncompressed `.npz` files and
`tf.data` datasets are not loaded whole: their splits hold `LazyInputs` that read (and
preprocess) the samples a slice asks for, so data larger than memory flows through in batches.
"""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from workbench.datasets import sources
from workbench.datasets.base import Dataset, Preprocessing, Split
from workbench.datasets.lazy import LazyInputs, batches
from workbench.datasets.splits import split_arrays
from workbench.errors import DataError
from workbench.inputs import check_inputs

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
BYTES = Preprocessing(scale=1 / 255, description="8-bit values 0..255 scaled to 0..1")
AS_GIVEN = Preprocessing(description="values used as given")


def from_arrays(
    x: Any,
    y: Any = None,
    *,
    name: str,
    seed: int = 0,
    class_names: tuple[str, ...] = (),
    preprocessing: Preprocessing | None = None,
) -> Dataset:
    """Validate, preprocess (uint8 -> 0..1, or `preprocessing` when given) and split arrays;
    `y=None` makes unlabelled data."""
    x = np.asarray(x)
    preprocessing = _preprocessing(x, name, preprocessing)
    x = check_inputs(preprocessing.apply(x), (None, *x.shape[1:]), f"data {name!r}")
    labels = None if y is None else _labels(y, len(x), name)
    train, calibration, test, validation = split_arrays(x, labels, **_held_out(len(x)), seed=seed)
    num_classes = None if labels is None else int(labels.max()) + 1
    return Dataset(
        name, train, calibration, test, num_classes, preprocessing, class_names, validation
    )


def _preprocessing(x: Any, name: str, preprocessing: Preprocessing | None) -> Preprocessing:
    """What raw `x` goes through (bytes: 0..1 or `preprocessing`), once its shape is checked."""
    if x.ndim < 2 or len(x) < 3:
        raise DataError(
            f"data {name!r}: need at least 3 samples with a batch axis first, got shape {x.shape}"
        )
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"data {name!r}: inputs have dtype {x.dtype}; give numeric arrays")
    return (preprocessing or BYTES) if x.dtype == np.uint8 else AS_GIVEN


def _held_out(count: int) -> dict[str, int]:
    """Split sizes: a fifth for test, up to 200 of as many for calibration, a fifth for
    validation, the rest train."""
    held_out = max(1, count // 5)
    return {"calibration": min(200, held_out), "test": held_out, "validation": held_out}


def lazy_dataset(
    raw: Any,
    read: sources.Reader,
    labels: Any,
    *,
    name: str,
    seed: int,
    source: str,
    preprocessing: Preprocessing | None = None,
    class_names: tuple[str, ...] = (),
) -> Dataset:
    """A dataset whose splits read samples on demand: `raw` describes them (shape, dtype; a
    memory map or a stand-in), ``read(indices)`` reads raw samples, `source` fingerprints them.

    Split exactly as `from_arrays` splits the same samples in memory.
    """
    preprocessing = _preprocessing(raw, name, preprocessing)
    whole = LazyInputs(read, np.arange(len(raw)), raw.shape[1:], preprocessing, source)
    if preprocessing is AS_GIVEN:  # floats may hold NaN: one pass in batches
        for batch in batches(whole):
            check_inputs(batch, (None, *raw.shape[1:]), f"data {name!r}")
    labels = None if labels is None else _labels(labels, len(raw), name)
    positions = np.arange(len(raw))
    splits = split_arrays(positions, labels, **_held_out(len(raw)), seed=seed)
    train, calibration, test, validation = (Split(whole.take(s.x), s.y) for s in splits)
    num_classes = None if labels is None else int(labels.max()) + 1
    return Dataset(
        name, train, calibration, test, num_classes, preprocessing, class_names, validation
    )


def _labels(y: Any, count: int, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:
        y = y.argmax(axis=1)  # one-hot
    y = y.reshape(-1)
    if len(y) != count:
        raise DataError(f"data {name!r}: {count} inputs but {len(y)} labels; give one per input")
    if not np.issubdtype(y.dtype, np.number) or not np.isfinite(y).all():
        raise DataError(f"data {name!r}: labels must be finite class numbers 0..N-1")
    if (y < 0).any() or (y != np.round(y)).any():
        found = y[(y < 0) | (y != np.round(y))][0]
        raise DataError(
            f"data {name!r}: labels must be class numbers 0..N-1, found {found}; for a model "
            "that is not a classifier, save the data without y (outputs are compared with float)"
        )
    return y.astype(np.int64)


@contextlib.contextmanager
def npz_archive(path: Path) -> Iterator[Any]:
    """The open `.npz` archive at `path`; one-line `DataError`s for a file that is missing, not
    an `.npz`, unreadable or holding Python objects (never loaded: unsafe)."""
    if not path.is_file():
        raise DataError(f"data {str(path)!r}: no such file; give an .npz file or an image folder")
    if not zipfile.is_zipfile(path):
        raise DataError(
            f"{path}: not a readable .npz archive (numpy.savez writes a zip of .npy arrays); "
            "save with numpy.savez(path, x=inputs, y=labels)"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            yield archive
    except ValueError as error:
        if "pickle" in str(error):  # object arrays: loading them would run pickled code
            raise DataError(
                f"{path}: holds Python object arrays, which are never loaded (unsafe); "
                "save numeric arrays with numpy.savez(path, x=inputs, y=labels)"
            ) from None
        raise DataError(f"{path}: not a readable .npz archive ({error})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(
            f"{path}: not a readable .npz archive ({error}); save with numpy.savez"
        ) from None


def load_npz(
    path: Path,
    *,
    name: str | None = None,
    seed: int = 0,
    preprocessing: Preprocessing | None = None,
) -> Dataset:
    """An `.npz` with an `x` array and optionally `y` labels; `x` is memory-mapped and read in
    batches when stored uncompressed (`numpy.savez`), read whole when compressed."""
    with npz_archive(path) as archive:
        names = set(archive.files)
        labels = archive["y"] if "y" in names else None
        mapped = sources.npz_member(path, "x") if "x" in names else None
        x = archive["x"] if "x" in names and mapped is None else None
    if "x" not in names:
        raise DataError(
            f"{path}: no array named 'x' (found {sorted(names)}); save with "
            "numpy.savez(path, x=inputs, y=labels)"
        )
    name = name or path.stem
    if mapped is None:
        return from_arrays(x, labels, name=name, seed=seed, preprocessing=preprocessing)
    return lazy_dataset(
        mapped,
        sources.array_reader(mapped),
        labels,
        name=name,
        seed=seed,
        source=sources.stat_fingerprint([path], "x"),
        preprocessing=preprocessing,
    )


def load_image_folder(
    path: Path,
    *,
    name: str | None = None,
    seed: int = 0,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    preprocessing: Preprocessing | None = None,
) -> Dataset:
    """One sub-folder per class (or images directly in `path`: unlabelled); images resized to
    `image_size` (width, height) or to the first image's size, and converted to gray
    (`channels` 1) or RGB (3; by default as the first image is). Only the first image is opened
    here; the rest are read batch by batch."""
    from PIL import Image, UnidentifiedImageError

    def images(folder: Path) -> list[Path]:
        return [file for file in sorted(folder.iterdir()) if file.suffix.lower() in IMAGE_SUFFIXES]

    classes = sorted(entry.name for entry in path.iterdir() if entry.is_dir())
    files, labels = [], []
    for label, class_name in enumerate(classes):
        found = images(path / class_name)
        files += found
        labels += [label] * len(found)
    if not classes:  # images with no class folders: unlabelled data (calibration, agreement)
        files, labels = images(path), None
        if not files:
            raise DataError(
                f"{path}: no class sub-folders and no images; put images in "
                f"{path}/<class>/<image> (or directly in it, unlabelled)"
            )
    if not files:
        deeper = next(
            (f for f in sorted(path.glob("*/*/*")) if f.suffix.lower() in IMAGE_SUFFIXES), None
        )
        hint = f"; they are one level deeper: give {deeper.parent.parent}" if deeper else ""
        raise DataError(
            f"{path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in class folders{hint}"
        )
    try:
        with Image.open(files[0]) as image:
            mode = {1: "L", 3: "RGB"}.get(channels or 0) or (
                "L" if image.mode in ("L", "1") else "RGB"
            )
            size = tuple(image_size or image.size)
    except (OSError, UnidentifiedImageError):
        raise DataError(f"{files[0]}: not a readable image; remove or replace it") from None
    channels = 1 if mode == "L" else 3
    shape = (len(files), size[1], size[0], channels)
    return lazy_dataset(
        _Shaped(shape, np.dtype(np.uint8)),
        sources.image_reader(files, size, mode),
        labels,
        name=name or path.name,
        seed=seed,
        source=sources.stat_fingerprint(files, size, mode),
        preprocessing=preprocessing,
        class_names=tuple(classes),
    )


class _Shaped:
    """Stands in for raw samples not read yet: their shape and dtype."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.shape, self.dtype, self.ndim = shape, dtype, len(shape)

    def __len__(self) -> int:
        return self.shape[0]


def from_tf_dataset(
    dataset: Any, *, name: str, seed: int = 0, preprocessing: Preprocessing | None = None
) -> Dataset:
    """Elements `x` or `(x, y)`, batched or not; `x` is written to a temporary file as the
    elements come (one pass) and read back in batches, labels are kept in memory."""
    spec = dataset.element_spec
    labelled = isinstance(spec, tuple)
    first = spec[0] if labelled else spec
    if first.shape.rank and first.shape[0] is None:
        dataset = dataset.unbatch()
    labels: list[Any] = []

    def inputs() -> Any:
        for element in dataset.as_numpy_iterator():
            if labelled:
                labels.append(element[1])
            yield element[0] if labelled else element

    mapped, read, digest = sources.spill(inputs(), name)
    return lazy_dataset(
        mapped,
        read,
        np.stack(labels) if labelled else None,
        name=name,
        seed=seed,
        source=digest,
        preprocessing=preprocessing,
    )
