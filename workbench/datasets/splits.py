"""Deterministic, seeded, disjoint train / calibration / test splits."""

from __future__ import annotations

import numpy as np

from workbench.datasets.base import Split


def split_arrays(
    x: np.ndarray,
    y: np.ndarray | None,
    *,
    calibration: int,
    test: int,
    seed: int,
    validation: int = 0,
) -> tuple[Split, Split, Split, Split]:
    """Shuffle once with `seed` and cut test, calibration, validation, then train (the rest).

    All four are disjoint; labelled data is stratified: every split keeps the class proportions.
    Test and calibration do not depend on `validation` (it comes out of what would be train).
    """
    rng = np.random.default_rng(seed)
    if y is None:
        order = rng.permutation(len(x))
    else:
        # interleave classes after shuffling within each, so any prefix is stratified
        ranks = np.empty(len(y), dtype=np.float64)
        for label in np.unique(y):
            members = np.flatnonzero(y == label)
            ranks[rng.permutation(members)] = (np.arange(len(members)) + rng.random()) / len(
                members
            )
        order = np.argsort(ranks, kind="stable")
    test_idx, calibration_idx = order[:test], order[test : test + calibration]
    held_out = test + calibration
    validation_idx = order[held_out : held_out + validation]
    train_idx = order[held_out + validation :]

    def take(indices: np.ndarray) -> Split:
        indices = np.sort(indices)
        return Split(x[indices], None if y is None else y[indices])

    return take(train_idx), take(calibration_idx), take(test_idx), take(validation_idx)
