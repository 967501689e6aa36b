"""Model inputs read on demand, so data larger than memory flows through in batches.

`LazyInputs` stands where a float32 array of model inputs would (`Split.x`): it has a length,
a shape and a dtype, and ``x[start:stop]`` (or ``x[i]``) reads and preprocesses only those
samples. Image folders read their files; `.npz` files stored uncompressed and spilled
`tf.data` elements are read from a memory map. ``np.asarray(x)`` still gives the whole array
(for small splits such as calibration); everything that walks a dataset takes slices.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from workbench.datasets.base import Preprocessing

BATCH_BYTES = 4 * 2**20  # float32 input bytes per batch: 256 small samples, 6 at 224x224x3
MOST_SAMPLES = 256


class LazyInputs:
    """Samples ``read(indices)`` (raw values, sorted indices) then ``preprocessing.apply``."""

    dtype = np.dtype(np.float32)

    def __init__(
        self,
        read: Callable[[np.ndarray], np.ndarray],
        indices: np.ndarray,
        sample_shape: tuple[int, ...],
        preprocessing: Preprocessing,
        fingerprint: str,
        *,
        view: str | None = None,
    ) -> None:
        self._read = read
        self.indices = np.asarray(indices, dtype=np.int64)
        self.sample_shape = tuple(sample_shape)
        self.preprocessing = preprocessing
        self._source = fingerprint
        self._view = view  # the fingerprint of the view an `in_memory` copy was made of

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.indices), *self.sample_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.sample_shape)

    def __len__(self) -> int:
        return len(self.indices)

    def __repr__(self) -> str:
        return f"LazyInputs({self.shape}, read on demand)"

    @property
    def fingerprint(self) -> str:
        """The source's content hash and the samples this view holds."""
        if self._view is not None:
            return self._view
        digest = hashlib.sha256(self._source.encode())
        digest.update(self.indices.tobytes())
        digest.update(repr(self.preprocessing).encode())
        return digest.hexdigest()[:16]

    def take(self, positions: np.ndarray) -> LazyInputs:
        """A view of the samples at `positions` (of this view), still unread."""
        return LazyInputs(
            self._read, self.indices[positions], self.sample_shape, self.preprocessing, self._source
        )

    def in_memory(self) -> LazyInputs:
        """The same samples read now, kept in memory as stored (image pixels stay uint8, a
        quarter of float32) and preprocessed on demand as before, with the same fingerprint:
        a copy that can travel to another machine without the files behind it."""
        order = np.argsort(self.indices, kind="stable")
        raw: np.ndarray | None = None
        size = samples_per_batch(self.sample_shape)
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            values = self._read(self.indices[chunk])
            if raw is None:
                raw = np.empty((len(order), *values.shape[1:]), values.dtype)
            raw[chunk] = values
        if raw is None:
            return self
        kept = raw
        return LazyInputs(
            lambda indices: kept[indices],
            np.arange(len(kept)),
            self.sample_shape,
            self.preprocessing,
            self._source,
            view=self.fingerprint,
        )

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, int | np.integer):
            return self[int(key) : int(key) + 1 or None][0]
        if not isinstance(key, slice):
            raise TypeError("LazyInputs: index with an integer or a slice (x[start:stop])")
        wanted = self.indices[key]
        if len(wanted) == 0:
            return np.zeros((0, *self.sample_shape), np.float32)
        order = np.argsort(wanted, kind="stable")
        raw = np.empty((len(wanted), *self.sample_shape), dtype=np.float32)
        raw[order] = self.preprocessing.apply(self._read(wanted[order]))
        return raw

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        whole = np.concatenate(list(batches(self))) if len(self) else self[0:0]
        return whole if dtype is None else whole.astype(dtype)


def samples_per_batch(sample_shape: tuple[int, ...], most: int = MOST_SAMPLES) -> int:
    """How many samples of this shape make a batch of about `BATCH_BYTES` of float32 (at most
    `most`): small inputs go 256 at a time, 224x224 images 6, so the activations of a batch
    stay a few hundred MB whatever the input size."""
    if any(d is None for d in sample_shape):
        return most
    size = 4 * int(np.prod(sample_shape, dtype=np.int64))
    return int(max(1, min(most, BATCH_BYTES // max(size, 1))))


def batches(x: Any, size: int | None = None) -> Iterator[np.ndarray]:
    """``x[start:start + size]`` for each start: arrays and `LazyInputs` alike (by default
    `samples_per_batch` of them)."""
    size = size or samples_per_batch(tuple(x.shape[1:]))
    for start in range(0, len(x), size):
        yield x[start : start + size]


def is_lazy(x: Any) -> bool:
    return isinstance(x, LazyInputs)
