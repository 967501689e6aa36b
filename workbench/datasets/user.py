"""User data: `.npz` files, image folders, numpy arrays and `tf.data` datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from workbench.datasets.base import Dataset, Preprocessing
from workbench.datasets.splits import split_arrays
from workbench.errors import DataError
from workbench.inputs import check_inputs

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
BYTES = Preprocessing(scale=1 / 255, description="8-bit values 0..255 scaled to 0..1")
AS_GIVEN = Preprocessing(description="values used as given")


def from_arrays(
    x: Any, y: Any = None, *, name: str, seed: int = 0, class_names: tuple[str, ...] = ()
) -> Dataset:
    """Validate, preprocess (uint8 -> 0..1) and split arrays; `y=None` makes unlabelled data."""
    x = np.asarray(x)
    if x.ndim < 2 or len(x) < 3:
        raise DataError(
            f"data {name!r}: need at least 3 samples with a batch axis first, got shape {x.shape}"
        )
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"data {name!r}: inputs have dtype {x.dtype}; give numeric arrays")
    preprocessing = BYTES if x.dtype == np.uint8 else AS_GIVEN
    x = check_inputs(preprocessing.apply(x), (None, *x.shape[1:]), f"data {name!r}")
    labels = None if y is None else _labels(y, len(x), name)
    held_out = max(1, len(x) // 5)
    train, calibration, test, validation = split_arrays(
        x, labels, calibration=min(200, held_out), test=held_out, seed=seed, validation=held_out
    )
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
        raise DataError(f"data {name!r}: labels must be whole numbers 0..N-1, found {y.min()}")
    return y.astype(np.int64)


def load_npz(path: Path, *, name: str | None = None, seed: int = 0) -> Dataset:
    """An `.npz` with an `x` array and optionally `y` labels."""
    import zipfile

    if not zipfile.is_zipfile(path):
        raise DataError(
            f"{path}: not a readable .npz archive (numpy.savez writes a zip of .npy arrays); "
            "save with numpy.savez(path, x=inputs, y=labels)"
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = dict(archive)
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
    if "x" not in arrays:
        raise DataError(
            f"{path}: no array named 'x' (found {sorted(arrays)}); save with "
            "numpy.savez(path, x=inputs, y=labels)"
        )
    return from_arrays(arrays["x"], arrays.get("y"), name=name or path.stem, seed=seed)


def load_image_folder(
    path: Path,
    *,
    name: str | None = None,
    seed: int = 0,
    image_size: tuple[int, int] | None = None,
) -> Dataset:
    """One sub-folder per class; images resized to `image_size` or to the first image's size."""
    from PIL import Image, UnidentifiedImageError

    classes = sorted(entry.name for entry in path.iterdir() if entry.is_dir())
    if not classes:
        raise DataError(f"{path}: no class sub-folders; put images in {path}/<class>/<image>")
    images, labels, mode = [], [], None
    for label, class_name in enumerate(classes):
        for file in sorted((path / class_name).iterdir()):
            if file.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            try:
                with Image.open(file) as image:
                    mode = mode or ("L" if image.mode in ("L", "1") else "RGB")
                    image = image.convert(mode)
                    image_size = image_size or image.size
                    images.append(np.asarray(image.resize(image_size)))
            except (OSError, UnidentifiedImageError):
                raise DataError(f"{file}: not a readable image; remove or replace it") from None
            labels.append(label)
    if not images:
        raise DataError(f"{path}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in class folders")
    x = np.stack(images)
    if x.ndim == 3:
        x = x[..., None]
    return from_arrays(x, labels, name=name or path.name, seed=seed, class_names=tuple(classes))


def from_tf_dataset(dataset: Any, *, name: str, seed: int = 0) -> Dataset:
    """Elements `x` or `(x, y)`, batched or not."""
    spec = dataset.element_spec
    labelled = isinstance(spec, tuple)
    first = spec[0] if labelled else spec
    if first.shape.rank and first.shape[0] is None:
        dataset = dataset.unbatch()
    xs, ys = [], []
    for element in dataset.as_numpy_iterator():
        xs.append(element[0] if labelled else element)
        if labelled:
            ys.append(element[1])
    if not xs:
        raise DataError(f"data {name!r}: the tf.data.Dataset is empty")
    return from_arrays(np.stack(xs), np.stack(ys) if labelled else None, name=name, seed=seed)
