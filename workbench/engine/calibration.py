"""Calibration data and the per-route calibration state that every int variant reuses.

A `Calibration` holds the float32 samples of one dataset. Routes store what they derive from
them (the converter's calibrated model, the LiteRT Quantizer's calibration result) with
`prepare`, keyed by route, model fingerprint and sample count, so it is computed once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from workbench.errors import DataError
from workbench.once import OnceCache

T = TypeVar("T")


class Calibration:
    """Float32 calibration samples plus a thread-safe memo of what routes derived from them."""

    def __init__(self, x: Any, fingerprint: str = "none") -> None:
        """`x`: the samples, an array (or `MultiInputs` for a model with several inputs)."""
        from workbench.datasets.multi import MultiInputs

        if x is not None and not isinstance(x, MultiInputs):
            x = np.ascontiguousarray(x, dtype=np.float32)
        self._x = x
        self.fingerprint = fingerprint
        self._prepared: OnceCache[Any] = OnceCache()

    def __repr__(self) -> str:
        count = 0 if self._x is None else len(self._x)
        return f"Calibration({count} samples, data={self.fingerprint})"

    def samples(self, count: int) -> Any:
        """The first `count` samples (all of them when there are fewer)."""
        if self._x is None or len(self._x) == 0:
            raise DataError(
                "data: int8 and int16x8 need calibration data; give data (--data on the command "
                "line): a dataset name, .npz file, image folder or array of model inputs"
            )
        return self._x[:count]

    @property
    def calibrations(self) -> int:
        """How many times a route actually ran its calibration."""
        return self._prepared.builds

    def prepare(self, key: tuple[Any, ...], build: Callable[[], T]) -> T:
        """`build()` once per key (route, model fingerprint, samples...), then the stored value;
        other keys (routes, sample counts) do not wait for it."""
        return self._prepared.get(key, build)
