"""Scores as sums over samples, so evaluations of shards combine exactly into the whole.

`score_sums` turns one shard's outputs into counts and exact sums (`Fraction`s of the per-sample
float64 terms); adding the sums of any partition of the samples gives the same total, so
`ScoreSums.evaluation()` is identical whether the samples ran in one process or in many.
Latency travels as raw invoke times and is pooled into one distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from workbench.engine.evaluation import Evaluation, Latency
from workbench.metrics import row_cosines


@dataclass(frozen=True)
class ScoreSums:
    """Counts and exact sums of one set of samples against the float reference outputs."""

    samples: int
    correct: int | None  # None for unlabelled data
    reference_correct: int | None  # the float reference's correct count on the same samples
    agree: int
    signal: Fraction  # sum of reference**2
    noise: Fraction  # sum of (reference - outputs)**2
    cosine: Fraction  # sum of per-sample cosine similarities

    def __add__(self, other: ScoreSums) -> ScoreSums:
        def both(a: int | None, b: int | None) -> int | None:
            return None if a is None or b is None else a + b

        return ScoreSums(
            self.samples + other.samples,
            both(self.correct, other.correct),
            both(self.reference_correct, other.reference_correct),
            self.agree + other.agree,
            self.signal + other.signal,
            self.noise + other.noise,
            self.cosine + other.cosine,
        )

    def evaluation(self) -> Evaluation:
        """The metrics `evaluation.evaluate` reports, from the sums (rounded once, at the end)."""
        if self.noise == 0:
            snr = float("inf")
        elif self.signal == 0:
            snr = float("-inf")
        else:
            snr = 10.0 * math.log10(float(self.signal / self.noise))
        return Evaluation(
            accuracy=None if self.correct is None else float(Fraction(self.correct, self.samples)),
            agreement=float(Fraction(self.agree, self.samples)),
            snr_db=snr,
            cosine=float(self.cosine / self.samples),
            samples=self.samples,
        )

    @property
    def reference_accuracy(self) -> float | None:
        """Top-1 accuracy of the float reference on the same samples."""
        if self.reference_correct is None:
            return None
        return float(Fraction(self.reference_correct, self.samples))


def _exact_sum(values: np.ndarray) -> Fraction:
    """The exact sum of float64 values (every float64 is a fraction with a power-of-two
    denominator, so the total does not depend on the order or grouping of the additions)."""
    return sum((Fraction(float(v)) for v in values), Fraction(0))


def score_sums(outputs: np.ndarray, reference: np.ndarray, y: np.ndarray | None) -> ScoreSums:
    """Sums of one shard: model `outputs` against the float `reference`, labels `y` if any."""
    out = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    ref = np.asarray(reference, dtype=np.float64).reshape(len(reference), -1)
    if out.shape != ref.shape:
        raise ValueError(f"shapes differ: reference {ref.shape}, outputs {out.shape}")
    predicted, expected = np.argmax(out, axis=1), np.argmax(ref, axis=1)
    labels = None if y is None else np.asarray(y)
    return ScoreSums(
        samples=len(out),
        correct=None if labels is None else int(np.sum(predicted == labels)),
        reference_correct=None if labels is None else int(np.sum(expected == labels)),
        agree=int(np.sum(predicted == expected)),
        signal=_exact_sum(np.sum(ref**2, axis=1)),
        noise=_exact_sum(np.sum((ref - out) ** 2, axis=1)),
        cosine=_exact_sum(row_cosines(ref, out)),
    )


def pooled_latency(times_ms: list[np.ndarray], threads: int) -> Latency:
    """Median and interquartile range of all shards' single-invoke times together."""
    return Latency.of(np.concatenate([np.asarray(t, dtype=np.float64) for t in times_ms]), threads)
