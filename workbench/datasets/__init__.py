"""Datasets: the bundled `digits`, the generated `shapes`, and user data of several kinds.

`load_dataset` takes any of them and returns a `Dataset` of model-ready float32 arrays;
`load_for_model` prepares them for one model (its input size, preprocessing and inputs).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from workbench.datasets.base import Dataset, Preprocessing, Split
from workbench.datasets.for_model import load_for_model
from workbench.errors import DataError

DATASET_NAMES = ("digits", "shapes")

__all__ = ["DATASET_NAMES", "Dataset", "Preprocessing", "Split", "load_dataset", "load_for_model"]


def load_dataset(
    spec: Any,
    *,
    name: str | None = None,
    seed: int = 0,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    preprocessing: Preprocessing | None = None,
) -> Dataset:
    """A dataset from a name, an `.npz` or image-folder path, arrays, `(x, y)` or `tf.data`.

    8-bit user data (images) is scaled to 0..1, or goes through `preprocessing` when given (a
    published architecture's own); the built-in datasets keep theirs.
    """
    from workbench.datasets import user

    if isinstance(spec, Dataset):
        return spec
    if isinstance(spec, str) and spec in DATASET_NAMES:
        return _builtin(spec, seed)
    if isinstance(spec, str | Path):
        path = Path(spec)
        if path.suffix == ".npz" and path.is_file():
            return user.load_npz(path, name=name, seed=seed, preprocessing=preprocessing)
        if path.suffix.lower() == ".zip" and path.is_file():  # an image folder, zipped
            from workbench.datasets.archive import unpacked

            path, name = unpacked(path), name or path.stem
        if path.is_dir():
            return user.load_image_folder(
                path,
                name=name,
                seed=seed,
                image_size=image_size,
                channels=channels,
                preprocessing=preprocessing,
            )
        if path.exists():
            raise DataError(
                f"{path}: not a dataset; give an .npz file or a folder of class folders (or its "
                ".zip)"
            )
        raise DataError(
            f"data {str(spec)!r}: no such dataset or file; use one of "
            f"{', '.join(DATASET_NAMES)}, an .npz file or an image folder (or its .zip)"
        )
    if isinstance(spec, tuple) and len(spec) == 2:
        return user.from_arrays(
            spec[0], spec[1], name=name or "arrays", seed=seed, preprocessing=preprocessing
        )
    if type(spec).__module__.startswith("tensorflow"):
        return user.from_tf_dataset(
            spec, name=name or "tf.data", seed=seed, preprocessing=preprocessing
        )
    if hasattr(spec, "__array__"):
        return user.from_arrays(
            spec, None, name=name or "arrays", seed=seed, preprocessing=preprocessing
        )
    raise DataError(
        f"data: cannot use a {type(spec).__name__}; give a dataset name, a path, arrays or (x, y)"
    )


@functools.lru_cache(maxsize=8)
def _builtin(name: str, seed: int) -> Dataset:
    """Built-in datasets are deterministic, so each (name, seed) is made once per process."""
    if name == "digits":
        from workbench.datasets.digits import load_digits

        return load_digits(seed)
    from workbench.datasets.shapes import load_shapes

    return load_shapes(seed)
