"""Import TF Model Optimization without its process-wide side effect, its per-channel
clustering vectorized (`per_channel_clusters`).

Importing `tensorflow_model_optimization` sets ``TF_USE_LEGACY_KERAS=1`` in `os.environ`,
which would make every later subprocess (notebook kernels, Dask workers) run on tf_keras;
the variable is put back as it was. TF-MOT itself keeps using tf_keras.
"""

from __future__ import annotations

import functools
import os
from typing import Any

LEGACY = "TF_USE_LEGACY_KERAS"


@functools.cache
def tfmot() -> Any:
    """The `tensorflow_model_optimization` module (imported once)."""
    before = os.environ.get(LEGACY)
    try:
        import tensorflow_model_optimization as module
        from tensorflow_model_optimization.python.core.clustering.keras import (
            clustering_algorithm,
        )
    finally:
        if before is None:
            os.environ.pop(LEGACY, None)
        else:
            os.environ[LEGACY] = before
    from workbench.compress.per_channel_clusters import vectorize

    vectorize(clustering_algorithm)  # cluster-preserving QAT at the size of real models
    return module


def tf_keras() -> Any:
    """The tf_keras module TF-MOT wraps."""
    import tf_keras as module

    return module
