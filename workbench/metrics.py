"""Error metrics between a reference (float) array and an approximation, in plain numpy.

Every function takes ``(ref, x)`` of the same shape and returns a Python float, computed in
float64 so that small errors are not lost.
"""

from __future__ import annotations

import numpy as np

from workbench.errors import DataError


def _pair(ref: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ref = np.asarray(ref, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if ref.shape != x.shape:
        raise ValueError(f"shapes differ: reference {ref.shape}, compared {x.shape}")
    if ref.size == 0:
        raise ValueError("empty arrays: nothing to compare")
    return ref, x


def mse(ref: np.ndarray, x: np.ndarray) -> float:
    """Mean squared error."""
    ref, x = _pair(ref, x)
    return float(np.mean((ref - x) ** 2))


def snr_db(ref: np.ndarray, x: np.ndarray) -> float:
    """Signal-to-noise ratio in dB: ``10 log10(sum(ref^2) / sum((ref - x)^2))``.

    ``inf`` when the two are equal; ``-inf`` when the reference is all zeros but `x` is not.
    """
    ref, x = _pair(ref, x)
    signal = float(np.sum(ref**2))
    noise = float(np.sum((ref - x) ** 2))
    if noise == 0.0:
        return float("inf")
    if signal == 0.0:
        return float("-inf")
    return float(10.0 * np.log10(signal / noise))


def max_abs_error(ref: np.ndarray, x: np.ndarray) -> float:
    """Largest absolute difference."""
    ref, x = _pair(ref, x)
    return float(np.max(np.abs(ref - x)))


def error_in_scales(ref: np.ndarray, x: np.ndarray, scale: float) -> float:
    """Root mean squared error in units of the quantization step `scale`.

    Pure rounding error with no clipping sits near ``1 / sqrt(12) ≈ 0.29``.
    """
    if not np.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be finite and positive, got {scale}")
    return float(np.sqrt(mse(ref, x)) / scale)


def cosine_similarity(ref: np.ndarray, x: np.ndarray) -> float:
    """Cosine similarity; for 2-D arrays the mean over rows. A zero row against a zero row
    counts as 1, a zero row against a non-zero row as 0."""
    ref, x = _pair(ref, x)
    if ref.ndim != 2:
        ref, x = ref.reshape(1, -1), x.reshape(1, -1)
    return float(np.mean(row_cosines(ref, x)))


def row_cosines(ref: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of two 2-D arrays (zero against zero is 1, else 0)."""
    ref, x = _pair(ref, x)
    dot = np.sum(ref * x, axis=1)
    norms = np.linalg.norm(ref, axis=1) * np.linalg.norm(x, axis=1)
    both_zero = (np.linalg.norm(ref, axis=1) == 0) & (np.linalg.norm(x, axis=1) == 0)
    cosine = np.where(norms > 0, dot / np.where(norms > 0, norms, 1.0), 0.0)
    return np.where(both_zero, 1.0, cosine)


def predicted_classes(scores: np.ndarray, logit: bool = False) -> np.ndarray:
    """Per row, the class `scores` predict: the arg-max of a score vector, or for a binary
    classifier's single score 1 above 0.5 (a sigmoid probability) or above 0 (a `logit`)."""
    scores = np.asarray(scores)
    flat = scores.reshape(len(scores), -1)
    if flat.shape[1] == 1:
        return (flat[:, 0] > (0.0 if logit else 0.5)).astype(np.int64)
    return np.argmax(flat, axis=1)


def top1_agreement(ref_scores: np.ndarray, scores: np.ndarray, logit: bool = False) -> float:
    """Fraction of rows whose predicted class is the same in both (0..1)."""
    ref, x = _pair(ref_scores, scores)
    return float(np.mean(predicted_classes(ref, logit) == predicted_classes(x, logit)))


def top1_correct(scores: np.ndarray, labels: np.ndarray, logit: bool = False) -> np.ndarray:
    """Per row, whether the predicted class of `scores` is the label (a boolean array)."""
    labels = np.asarray(labels)
    check_labels(scores, labels)
    return predicted_classes(scores, logit) == labels


def check_labels(scores: np.ndarray, labels: np.ndarray) -> None:
    """Refuse labels a single score cannot predict: a binary classifier's classes are 0 and 1."""
    scores = np.asarray(scores)
    single = scores.reshape(len(scores), -1).shape[1] == 1
    if single and labels.size and int(labels.max()) > 1:
        raise DataError(
            f"labels: found {int(labels.max())}, but the model gives one score per sample (a "
            "binary classifier: classes 0 and 1); give 0/1 labels, the model they belong to, "
            "or, for a model that is not a classifier, data without labels"
        )


def is_class_scores(scores: np.ndarray) -> bool:
    """Whether model outputs are a (samples, classes) score vector with at least two classes:
    where top-1 accuracy and agreement mean something (not a regression value, a mask, boxes)."""
    scores = np.asarray(scores)
    return scores.ndim == 2 and scores.shape[1] > 1
