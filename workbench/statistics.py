"""Intervals that travel with the numbers: accuracy and paired accuracy differences.

Plain numpy (no SciPy): a Wilson score interval for a proportion, and for two classifiers scored
on the same samples the mean paired difference with a normal-approximation interval on the
per-sample differences (what a paired t-test would use, at these sample counts the same).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

_Z95 = 1.959963984540054  # two-sided 95 % normal quantile


@dataclass(frozen=True)
class Estimate:
    """A value with its 95 % interval and the number of samples behind it."""

    value: float
    low: float
    high: float
    samples: int

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "low": self.low, "high": self.high, "samples": self.samples}

    def __str__(self) -> str:
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"


def proportion(successes: int, samples: int, *, scale: float = 100.0) -> Estimate:
    """`successes / samples` with its Wilson score interval, times `scale` (percent by default)."""
    if samples <= 0:
        raise ValueError("proportion of zero samples")
    p = successes / samples
    z2 = _Z95 * _Z95
    centre = (p + z2 / (2 * samples)) / (1 + z2 / samples)
    half = (
        _Z95 * math.sqrt(p * (1 - p) / samples + z2 / (4 * samples * samples)) / (1 + z2 / samples)
    )
    return Estimate(
        scale * p, scale * max(0.0, centre - half), scale * min(1.0, centre + half), samples
    )


def paired_difference(first: np.ndarray, second: np.ndarray, *, scale: float = 100.0) -> Estimate:
    """Mean of `first - second` over the same samples (e.g. float correct minus quantized correct).

    The interval is mean +- z * sd / sqrt(n) of the per-sample differences: samples both get right
    or both get wrong add nothing to the spread, so it is far narrower than two separate intervals.
    """
    a = np.asarray(first, dtype=np.float64).ravel()
    b = np.asarray(second, dtype=np.float64).ravel()
    if a.shape != b.shape or a.size == 0:
        raise ValueError("paired difference needs two equally long, non-empty arrays")
    diff = a - b
    mean = float(diff.mean())
    sd = float(diff.std(ddof=1)) if diff.size > 1 else 0.0
    half = _Z95 * sd / math.sqrt(diff.size)
    return Estimate(scale * mean, scale * (mean - half), scale * (mean + half), int(diff.size))
