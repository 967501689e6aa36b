"""Samples of a model with several inputs, standing where one array of inputs would.

`MultiInputs` holds one float32 array per model input, in the model's input order (Keras'
`model.inputs`, which is also the order of the `.tflite`'s inputs), all with the same number
of rows. Like `LazyInputs` it has a length, slices (``x[start:stop]``, ``x[indices]``) and
`take`, so splits, batches and caches treat it as they treat one array; the places that feed
a model (the Keras reference, the interpreter, both routes' calibration) take
`input_arrays(x)`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from workbench.datasets.base import Dataset, Preprocessing
from workbench.datasets.splits import split_arrays
from workbench.errors import DataError
from workbench.inputs import check_inputs


class MultiInputs:
    """One float32 array per model input, with the same number of samples."""

    dtype = np.dtype(np.float32)

    def __init__(self, arrays: Sequence[np.ndarray], names: Sequence[str] = ()) -> None:
        self.arrays = tuple(np.asarray(a, dtype=np.float32) for a in arrays)
        self.names = tuple(names)  # the model's input names, when known
        if len({len(a) for a in self.arrays}) > 1:
            counts = ", ".join(str(len(a)) for a in self.arrays)
            raise DataError(
                f"x: the inputs have different sample counts ({counts}); give each model input "
                "the same samples"
            )

    @property
    def sample_shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(a.shape[1:]) for a in self.arrays)

    @property
    def shape(self) -> tuple[int, ...]:
        """(samples, values per sample over all inputs): what batch sizes are reckoned from."""
        return (len(self), sum(int(np.prod(s, dtype=np.int64)) for s in self.sample_shapes))

    def __len__(self) -> int:
        return len(self.arrays[0]) if self.arrays else 0

    def __repr__(self) -> str:
        return f"MultiInputs({len(self)} samples, inputs {list(self.sample_shapes)})"

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256(repr(self.names).encode())
        for array in self.arrays:
            digest.update(repr(array.shape).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()[:16]

    def __getitem__(self, key: Any) -> MultiInputs:
        if isinstance(key, int | np.integer):
            key = slice(int(key), int(key) + 1 or None)
        return MultiInputs([a[key] for a in self.arrays], self.names)

    def take(self, positions: np.ndarray) -> MultiInputs:
        return self[np.asarray(positions, dtype=np.int64)]

    def ordered(self, names: Sequence[str]) -> MultiInputs:
        """The same inputs in the order of `names` (a `.tflite`'s input order may differ from
        the Keras model's); as they are when their names are not all known."""
        if not self.names or set(names) != set(self.names):
            return self
        return MultiInputs([self.arrays[self.names.index(n)] for n in names], names)


def input_arrays(x: Any, names: Sequence[str] = ()) -> list[np.ndarray]:
    """The arrays to feed a model, one per input, in the order of its input `names` when
    given: `MultiInputs`' own, or `[x]`."""
    return list(x.ordered(names).arrays) if isinstance(x, MultiInputs) else [x]


def check_model_inputs(
    x: Any, sample_shapes: Sequence[tuple[int, ...]], names: Sequence[str] = ()
) -> Any:
    """`x` checked against a model's inputs (`check_inputs` on each, in the order of the
    model's input `names` when given); `MultiInputs` for several inputs, an array for one."""
    if len(sample_shapes) == 1 and not isinstance(x, MultiInputs):
        return check_inputs(x, (None, *sample_shapes[0]))
    arrays = input_arrays(x, names)
    names = x.ordered(names).names if isinstance(x, MultiInputs) else ()
    if len(arrays) != len(sample_shapes):
        raise DataError(
            f"x: {len(arrays)} input arrays for a model with {len(sample_shapes)} inputs; give "
            "one array per model input, in the model's input order"
        )
    labels = names or [f"input {i}" for i in range(len(arrays))]
    return MultiInputs(
        [
            check_inputs(a, (None, *shape), f"x ({label})")
            for a, shape, label in zip(arrays, sample_shapes, labels, strict=True)
        ],
        names,
    )


def from_input_arrays(
    x: Sequence[Any] | Mapping[str, Any],
    y: Any,
    *,
    names: Sequence[str],
    shapes: Sequence[tuple[int | None, ...]],
    name: str = "arrays",
    seed: int = 0,
) -> Dataset:
    """A dataset for a model with several inputs: `x` one array per input, in the model's input
    order or by input name (a dict); values used as given; split like `from_arrays`."""
    from workbench.datasets.user import _held_out, _labels

    if isinstance(x, Mapping):
        missing = sorted(set(names) - set(x))
        if missing:
            raise DataError(
                f"data {name!r}: no array for model input(s) {', '.join(missing)}; give one "
                f"array per input name ({', '.join(names)})"
            )
        x = [x[n] for n in names]
    samples = check_model_inputs(MultiInputs(list(x), names), [tuple(s[1:]) for s in shapes])
    labels = None if y is None else _labels(y, len(samples), name)
    train, calibration, test, validation = split_arrays(
        samples, labels, **_held_out(len(samples)), seed=seed
    )
    num_classes = None if labels is None else int(labels.max()) + 1
    preprocessing = Preprocessing(description="values used as given")
    return Dataset(name, train, calibration, test, num_classes, preprocessing, (), validation)
