"""`digits`: scikit-learn's bundled 8x8 handwritten digits (1797 real samples, no download)."""

from __future__ import annotations

import numpy as np

from workbench.datasets.base import Dataset, Preprocessing
from workbench.datasets.splits import split_arrays

PREPROCESSING = Preprocessing(scale=1 / 16, description="pixel values 0..16 scaled to 0..1")


def load_digits(seed: int = 0) -> Dataset:
    """Train 1197 / calibration 200 / test 400, stratified and seeded.

    All 1797 samples are used, and the demo model trained on the train split: the held-out
    calibration split doubles as the validation split searches decide on (disjoint from test).
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = PREPROCESSING.apply(bunch.images[..., None])
    y = bunch.target.astype(np.int64)
    train, calibration, test, _ = split_arrays(x, y, calibration=200, test=400, seed=seed)
    return Dataset(
        "digits",
        train,
        calibration,
        test,
        validation=calibration,
        num_classes=10,
        preprocessing=PREPROCESSING,
        class_names=tuple(str(d) for d in range(10)),
    )
