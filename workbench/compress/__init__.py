"""Compression: QAT, pruning, clustering, their combinations, distillation and equalization.

`compress(model, config, data)` returns a `Compressed` whose `.model` is a new Keras 3 model;
`Session.compressed(config)` wraps it in a session of its own, so every route, mode and
measurement works on it. Training runs on the data's train split (validation on the calibration
split, never the test split), seeded, with progress and a cancel event.
"""

from __future__ import annotations

import threading
from typing import Any

from workbench.compress.config import (
    CentroidInit,
    CompressConfig,
    Technique,
    WeightGranularity,
)
from workbench.compress.training import Cancelled, TrainingProgress
from workbench.errors import UnsupportedError

__all__ = [
    "Cancelled",
    "CentroidInit",
    "CompressConfig",
    "Technique",
    "TrainingProgress",
    "WeightGranularity",
    "compress",
]


def compress(
    model: Any,
    config: CompressConfig,
    data: Any,
    *,
    progress: Any = None,
    cancel: threading.Event | None = None,
) -> Any:
    """Run `config`'s technique on `model` (a Keras model or `ModelSource`) with `data`."""
    from workbench.compress.techniques import TECHNIQUES, Run
    from workbench.datasets import load_dataset

    keras_model = getattr(model, "keras_model", model)
    if keras_model is None or not hasattr(keras_model, "layers"):
        name = getattr(model, "name", type(model).__name__)
        raise UnsupportedError(
            f"model {name!r}: compression trains a Keras model; give the .keras file, not a "
            f"{getattr(model, 'kind', 'converted model')}"
        )
    outputs = getattr(keras_model, "outputs", None)  # None: subclassed, refused further on
    if outputs is not None and len(outputs) != 1:
        raise UnsupportedError(
            f"model {getattr(model, 'name', keras_model.name)!r}: compression trains a model with "
            f"one output (class scores on labels); this one has {len(outputs)}"
        )
    run = Run(keras_model, load_dataset(data), config, progress, cancel)
    return TECHNIQUES[config.technique](run)
