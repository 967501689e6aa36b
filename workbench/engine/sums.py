"""Scores as sums over samples, so evaluations of shards combine exactly into the whole.

`score_sums` turns one shard's first output into counts and exact sums (`Fraction`s of the
per-sample float64 terms); adding the sums of any partition of the samples gives the same total,
so `ScoreSums.evaluation()` is identical whether the samples ran in one process or in many. The
paired counts (right by the float model only, by the variant only, by both) give the accuracy
and drop estimates with their intervals. Latency travels as raw invoke times, pooled into one
distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from fractions import Fraction

import numpy as np

from workbench.engine.evaluation import Classes, Evaluation, Latency, as_outputs
from workbench.metrics import check_labels, predicted_classes, row_cosines
from workbench.statistics import Estimate, paired_difference, proportion


@dataclass(frozen=True)
class ScoreSums:
    """Counts and exact sums of one set of samples against the float reference outputs."""

    samples: int
    labelled: bool
    classes: bool  # the output holds class scores: accuracy and agreement apply
    both_right: int  # samples both the float model and the variant classify right
    float_only: int  # right by the float model only
    variant_only: int  # right by the variant only
    agree: int  # same top-1 class as the float model
    signal: Fraction  # sum of reference**2
    noise: Fraction  # sum of (reference - outputs)**2
    cosine: Fraction  # sum of per-sample cosine similarities

    def __add__(self, other: ScoreSums) -> ScoreSums:
        flags = ("labelled", "classes")
        if any(getattr(self, flag) != getattr(other, flag) for flag in flags):
            raise ValueError("cannot add the sums of labelled and unlabelled samples or scores")
        added = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)}
        return ScoreSums(**{**added, **{flag: getattr(self, flag) for flag in flags}})

    @property
    def correct(self) -> int | None:
        return self.both_right + self.variant_only if self.labelled and self.classes else None

    def evaluation(self) -> Evaluation:
        """The metrics `evaluation.evaluate` reports, from the sums (rounded once, at the end)."""
        if self.noise == 0:
            snr = math.inf
        elif self.signal == 0:
            snr = -math.inf
        else:
            snr = 10.0 * math.log10(float(self.signal / self.noise))
        return Evaluation(
            accuracy=None if self.correct is None else self.correct / self.samples,
            agreement=self.agree / self.samples if self.classes else None,
            snr_db=snr,
            cosine=float(self.cosine / self.samples),
            samples=self.samples,
        )

    def estimates(self) -> tuple[Estimate | None, Estimate | None]:
        """Accuracy with its Wilson interval, and the paired drop (float minus variant) with its
        interval, as `Session` reports them; None for unlabelled samples or other outputs."""
        if self.correct is None:
            return None, None
        neither = self.samples - self.both_right - self.float_only - self.variant_only
        counts = (self.both_right, self.float_only, self.variant_only, neither)
        pairs = ((True, True), (True, False), (False, True), (False, False))
        first = np.repeat([p[0] for p in pairs], counts)
        second = np.repeat([p[1] for p in pairs], counts)
        return proportion(self.correct, self.samples), paired_difference(first, second)


def _exact_sum(values: np.ndarray) -> Fraction:
    """The exact sum of float64 values (every float64 is a fraction with a power-of-two
    denominator, so the total does not depend on the order or grouping of the additions)."""
    return sum((Fraction(float(v)) for v in values), Fraction(0))


def score_sums(
    outputs: np.ndarray,
    reference: object,
    y: np.ndarray | None,
    classes: Classes | None = Classes.VECTOR,
) -> ScoreSums:
    """Sums of one shard: the model's first output against the float reference's first output
    (an array, or one array per output), with labels `y` if any; `classes`: how that output
    holds classes (`evaluation.classes_of`), None: it does not, only SNR and cosine apply."""
    out = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    first = as_outputs(reference)[0]
    ref = np.asarray(first, dtype=np.float64).reshape(len(first), -1)
    if out.shape != ref.shape:
        raise ValueError(f"shapes differ: reference {ref.shape}, outputs {out.shape}")
    logit = classes is not None and classes.logit
    predicted, expected = predicted_classes(out, logit), predicted_classes(ref, logit)
    labels = np.full(len(out), -1) if y is None else np.asarray(y)
    if classes is not None:
        check_labels(ref, labels)
    right, float_right = predicted == labels, expected == labels
    return ScoreSums(
        samples=len(out),
        labelled=y is not None,
        classes=classes is not None,
        both_right=int(np.sum(right & float_right)),
        float_only=int(np.sum(float_right & ~right)),
        variant_only=int(np.sum(right & ~float_right)),
        agree=int(np.sum(predicted == expected)),
        signal=_exact_sum(np.sum(ref**2, axis=1)),
        noise=_exact_sum(np.sum((ref - out) ** 2, axis=1)),
        cosine=_exact_sum(row_cosines(ref, out)),
    )


def pooled_latency(times_ms: list[np.ndarray], threads: int) -> Latency:
    """Median and interquartile range of all shards' single-invoke times together."""
    return Latency.of(np.concatenate([np.asarray(t, dtype=np.float64) for t in times_ms]), threads)
