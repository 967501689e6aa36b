"""Range statistics of a tensor: exact for arrays in memory, streaming for activations.

`Stats` is what every table holds: min, max, abs-max, a few percentiles and a histogram.
`StreamingHistogram` gathers the same from batches with memory that does not grow with the
data: a fixed number of fine bins whose width doubles when a batch falls outside the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

PERCENTILES = (0.1, 1.0, 50.0, 99.0, 99.9)
BINS = 64


@dataclass(frozen=True)
class Histogram:
    counts: tuple[int, ...]
    edges: tuple[float, ...]  # len(counts) + 1

    def to_dict(self) -> dict[str, Any]:
        return {"counts": list(self.counts), "edges": list(self.edges)}


@dataclass(frozen=True)
class Stats:
    """Range of one tensor (or one channel). `percentiles` maps q (0..100) to a value."""

    min: float
    max: float
    absmax: float
    percentiles: dict[float, float]
    histogram: Histogram
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "min": self.min,
            "max": self.max,
            "absmax": self.absmax,
            "percentiles": {str(q): v for q, v in self.percentiles.items()},
            "histogram": self.histogram.to_dict(),
            "count": self.count,
        }


def _edges(lo: float, hi: float, bins: int) -> np.ndarray:
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1)


def tensor_stats(values: np.ndarray, bins: int = BINS) -> Stats:
    """Exact statistics of an array (all of it in memory)."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    if flat.size == 0:
        raise ValueError("no values")
    lo, hi = float(flat.min()), float(flat.max())
    counts, edges = np.histogram(flat, bins=_edges(lo, hi, bins))
    values = np.percentile(flat, PERCENTILES)
    return Stats(
        min=lo,
        max=hi,
        absmax=max(-lo, hi),
        percentiles={q: float(v) for q, v in zip(PERCENTILES, values, strict=True)},
        histogram=Histogram(tuple(int(c) for c in counts), tuple(float(e) for e in edges)),
        count=int(flat.size),
    )


_COMPARISONS = 1 << 24  # values x bin edges compared at once by `channel_stats`


def channel_stats(values: np.ndarray, axis: int, bins: int = BINS) -> list[Stats]:
    """`tensor_stats` of each slice along `axis`: the same numbers, computed for all slices
    at once (a kernel has up to thousands of channels; one call per channel took seconds)."""
    rows = np.moveaxis(np.asarray(values, dtype=np.float64), axis, 0)
    rows = rows.reshape(len(rows), -1)
    if len(rows) and rows.shape[1] == 0:
        raise ValueError("no values")
    ordered = np.sort(rows, axis=1)
    lo, hi = ordered[:, :1], ordered[:, -1:]
    flat = hi <= lo  # as `_edges`: a constant channel gets a range of width 1
    edges = np.linspace(np.where(flat, lo - 0.5, lo), np.where(flat, hi + 0.5, hi), bins + 1)
    edges = np.moveaxis(edges, 0, 1)[:, :, 0]
    # np.histogram with given edges: counts of edges[i] <= v < edges[i + 1], the last bin closed
    below = np.empty((len(rows), bins + 1), dtype=np.int64)
    step = max(1, _COMPARISONS // max(1, rows.shape[1] * (bins + 1)))
    for start in range(0, len(rows), step):
        part, cut = ordered[start : start + step, None, :], edges[start : start + step, :, None]
        below[start : start + step, :-1] = (part < cut[:, :-1]).sum(axis=2)
        below[start : start + step, -1] = (part <= cut[:, -1:]).sum(axis=2)[:, 0]
    counts = np.diff(below, axis=1)
    quantiles = np.percentile(ordered, PERCENTILES, axis=1).T
    return [
        Stats(
            min=low,
            max=high,
            absmax=max(-low, high),
            percentiles=dict(zip(PERCENTILES, q, strict=True)),
            histogram=Histogram(tuple(c), tuple(e)),
            count=rows.shape[1],
        )
        for low, high, q, c, e in zip(
            lo[:, 0].tolist(),
            hi[:, 0].tolist(),
            quantiles.tolist(),
            counts.tolist(),
            edges.tolist(),
            strict=True,
        )
    ]


class StreamingHistogram:
    """Min, max and a fine histogram over batches, in constant memory.

    The fine bins cover ``[start, start + fine * width)``; when a batch falls outside, pairs of
    bins merge (the width doubles) and the range grows left or right until it fits. Percentiles
    come from the fine histogram (interpolated inside a bin) and are exact to one fine bin.
    """

    def __init__(self, fine: int = 2048) -> None:
        self.fine = fine
        self.counts = np.zeros(fine, dtype=np.int64)
        self.start = 0.0
        self.width = 0.0
        self.min = np.inf
        self.max = -np.inf
        self.count = 0

    def _grow_to(self, lo: float, hi: float) -> None:
        if self.width == 0.0:  # first data: fit the range exactly
            self.start = lo
            self.width = max((hi - lo) / self.fine, np.finfo(np.float32).tiny, abs(lo) * 1e-7)
            return
        while lo < self.start or hi >= self.start + self.fine * self.width:
            merged = self.counts.reshape(-1, 2).sum(axis=1)
            self.counts = np.zeros_like(self.counts)
            if lo < self.start:  # old bins become the right half
                self.counts[self.fine // 2 :] = merged
                self.start -= self.fine * self.width
            else:
                self.counts[: self.fine // 2] = merged
            self.width *= 2.0

    def update(self, batch: np.ndarray) -> None:
        flat = np.asarray(batch, dtype=np.float32).reshape(-1)
        if flat.size == 0:
            return
        lo, hi = float(flat.min()), float(flat.max())
        self._grow_to(lo, hi)
        self.min, self.max = min(self.min, lo), max(self.max, hi)
        index = ((flat - np.float32(self.start)) / np.float32(self.width)).astype(np.int64)
        np.clip(index, 0, self.fine - 1, out=index)
        self.counts += np.bincount(index, minlength=self.fine)
        self.count += flat.size

    def merge(self, lo: float, hi: float, counts: np.ndarray) -> None:
        """Add a histogram of one batch: `counts` in equal bins over [lo, hi].

        Each batch bin lands in the fine bin holding its centre, so a value moves by at most
        half a batch bin plus one fine bin; counts, min and max stay exact.
        """
        counts = np.asarray(counts, dtype=np.int64)
        total = int(counts.sum())
        if total == 0:
            return
        self._grow_to(lo, hi)
        self.min, self.max = min(self.min, lo), max(self.max, hi)
        centres = lo + (np.arange(len(counts)) + 0.5) * ((hi - lo) / len(counts))
        index = np.clip(((centres - self.start) / self.width).astype(np.int64), 0, self.fine - 1)
        self.counts += np.bincount(index, weights=counts, minlength=self.fine).astype(np.int64)
        self.count += total

    def percentile(self, q: float) -> float:
        cumulative = np.cumsum(self.counts)
        target = q / 100.0 * self.count
        i = int(np.searchsorted(cumulative, target, side="left"))
        i = min(i, self.fine - 1)
        before = cumulative[i - 1] if i > 0 else 0
        inside = (target - before) / self.counts[i] if self.counts[i] else 0.0
        value = self.start + (i + inside) * self.width
        return float(min(max(value, self.min), self.max))

    def stats(self, bins: int = BINS) -> Stats:
        """The gathered statistics, with at most `bins` histogram bins over the used range."""
        if self.count == 0:
            raise ValueError("no values")
        used = np.flatnonzero(self.counts)
        first, last = int(used[0]), int(used[-1]) + 1
        group = -(-(last - first) // bins)
        padded = np.zeros(-(-(last - first) // group) * group, dtype=np.int64)
        padded[: last - first] = self.counts[first:last]
        counts = padded.reshape(-1, group).sum(axis=1)
        edges = self.start + self.width * (first + group * np.arange(len(counts) + 1))
        return Stats(
            min=float(self.min),
            max=float(self.max),
            absmax=float(max(-self.min, self.max)),
            percentiles={q: self.percentile(q) for q in PERCENTILES},
            histogram=Histogram(tuple(int(c) for c in counts), tuple(float(e) for e in edges)),
            count=int(self.count),
        )
