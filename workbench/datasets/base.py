"""The dataset container every part of the workbench consumes.

A `Dataset` holds model-ready float32 arrays (preprocessing already applied, and declared in
`preprocessing`), or inputs read from files on demand, split into train / calibration / test
views. The same arrays feed Keras,
the converter's representative dataset and the LiteRT interpreter.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from workbench.errors import DataError
from workbench.inputs import shape_fits


@dataclass(frozen=True)
class Preprocessing:
    """How raw values became model inputs: ``x = raw * scale + offset`` as float32, the
    channels (last axis) reversed first when `reverse_channels` (RGB to BGR); `offset` is one
    number or one per channel."""

    scale: float = 1.0
    offset: float | tuple[float, ...] = 0.0
    description: str = "none"
    reverse_channels: bool = False

    def apply(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float32)
        if self.reverse_channels:
            raw = raw[..., ::-1]
        offset = np.asarray(self.offset, dtype=np.float32)
        return (raw * np.float32(self.scale)) + offset


@dataclass(frozen=True, eq=False, repr=False)
class Split:
    """One view of a dataset: inputs and, when labelled, integer class labels.

    `x` is a float32 array, or a `workbench.datasets.lazy.LazyInputs` that reads the samples a
    slice asks for (``x[start:stop]``) from files; code that walks a split takes slices.
    """

    x: Any
    y: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.x)

    def head(self, count: int) -> Split:
        """The first `count` samples (inputs read from files stay unread)."""
        lazy = not isinstance(self.x, np.ndarray)  # LazyInputs: a view, nothing read
        x = self.x.take(np.arange(min(count, len(self)))) if lazy else self.x[:count]
        return Split(x, None if self.y is None else self.y[:count])


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Named, split, preprocessed data. Unlabelled datasets have ``y is None`` everywhere.

    `validation` is held out from training and disjoint from `test`: searches decide on it and
    report on `test`. Left out, it is the calibration split (also never trained on).
    """

    name: str
    train: Split
    calibration: Split
    test: Split
    num_classes: int | None = None
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    class_names: tuple[str, ...] = ()
    validation: Split | None = None

    def __post_init__(self) -> None:
        if self.validation is None:
            object.__setattr__(self, "validation", self.calibration)

    @property
    def labelled(self) -> bool:
        return self.test.y is not None

    @property
    def binary_labels(self) -> bool:
        """Whether the labels are classes 0 and 1 only (over all splits): a model's single
        linear score is then a binary classifier's logit, not a value."""
        return self.labelled and self.num_classes is not None and self.num_classes <= 2

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.test.x.shape[1:])

    @property
    def fingerprint(self) -> str:
        """A content hash of the calibration and test arrays (keys caches); inputs read on
        demand (`LazyInputs`) give their own fingerprint instead of being read whole."""
        digest = hashlib.sha256()
        for split in (self.calibration, self.test):
            lazy = getattr(split.x, "fingerprint", None)
            digest.update(lazy.encode() if lazy else np.ascontiguousarray(split.x).tobytes())
            if split.y is not None:
                digest.update(np.ascontiguousarray(split.y).tobytes())
        return digest.hexdigest()[:16]

    def head_test(self, samples: int | None) -> Dataset:
        """This dataset with only the first `samples` test samples (None: all of them)."""
        if samples is not None and (not isinstance(samples, int | np.integer) or samples < 1):
            raise DataError(f"test_samples: {samples!r}; give a positive number, or None for all")
        if samples is None or len(self.test) <= samples:
            return self
        return replace(self, test=self.test.head(samples))

    def __repr__(self) -> str:
        sizes = (
            f"train={len(self.train)}, calibration={len(self.calibration)}, "
            f"validation={len(self.validation)}, test={len(self.test)}"
        )
        return f"Dataset({self.name!r}, input={self.input_shape}, {sizes})"

    def check_fits(self, input_shape: tuple[int | None, ...], num_classes: int | None) -> None:
        """Raise `DataError` unless these arrays can feed a model with this input and output."""
        expected = tuple(input_shape[1:])
        if not shape_fits(self.input_shape, input_shape):
            raise DataError(
                f"data {self.name!r}: inputs have shape {self.input_shape} but the model expects "
                f"{tuple(expected)}; reshape or resize the data to match the model input"
            )
        if self.labelled and num_classes is not None:
            top = max(int(s.y.max()) for s in (self.calibration, self.test) if len(s))
            if top >= num_classes:
                raise DataError(
                    f"data {self.name!r}: label {top} is outside the model's {num_classes} "
                    f"classes; use labels 0..{num_classes - 1} or the matching model"
                )
