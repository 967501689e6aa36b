"""Fine-tuning as a job: seeded, reporting progress, stoppable between batches.

The same loop drives Keras 3 (distillation) and tf_keras (TF-MOT wrappers): `fit` with a
callback that reports `TrainingProgress` and, when the cancel event is set, stops the fit and
raises `Cancelled`, so no half-trained model ever leaves this module.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.compress.config import CompressConfig
from workbench.datasets.lazy import batches as batches_of
from workbench.datasets.lazy import is_lazy
from workbench.errors import WorkbenchError
from workbench.metrics import top1_correct


class Cancelled(WorkbenchError):
    """Training was cancelled; the session is left as it was."""


@dataclass(frozen=True)
class TrainingProgress:
    """Where a fine-tuning run is: after each batch, and with validation accuracy per epoch."""

    epoch: int  # 1-based
    epochs: int
    batch: int  # 1-based, within the epoch
    batches: int
    loss: float
    val_accuracy: float | None = None  # on the calibration split, at the end of an epoch

    @property
    def fraction(self) -> float:
        return ((self.epoch - 1) * self.batches + self.batch) / (self.epochs * self.batches)


Progress = Callable[[TrainingProgress], None]


def batches_per_epoch(samples: int, config: CompressConfig) -> int:
    batches = -(-samples // config.batch_size)
    return batches if config.steps is None else min(batches, config.steps)


def single_score(model: Any) -> bool:
    """Whether `model` outputs one score per sample (a binary classifier)."""
    return model.outputs[0].shape[-1] == 1


def single_logit(model: Any) -> bool:
    """Whether a Keras 3 `model`'s one score per sample is a logit: no sigmoid makes it."""
    from workbench.models.loading import sigmoid_output

    return single_score(model) and not sigmoid_output(model)


def fit(
    model: Any,
    keras_module: Any,
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    config: CompressConfig,
    *,
    loss: Any = None,
    logit: bool = False,
    callbacks: list[Any] = (),
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Compile and fit `model` on `train` with the config's recipe (by default on the labels:
    cross-entropy over the classes, or binary for a single score, from a `logit` or a sigmoid
    probability); raise `Cancelled` if asked."""
    if loss is None and single_score(model):
        loss = keras_module.losses.BinaryCrossentropy(from_logits=logit)
    elif loss is None:
        loss = "sparse_categorical_crossentropy"
    keras_module.utils.set_random_seed(config.seed)
    x, y = train
    batches = batches_per_epoch(len(x), config)
    model.compile(optimizer=keras_module.optimizers.Adam(config.learning_rate), loss=loss)
    reporter = _reporter(keras_module, config, batches, validation, progress, cancel, logit)
    steps = batches if config.steps is not None else None
    if is_lazy(x):  # read on demand (an image folder): each batch is read when trained on
        arrays: dict[str, Any] = {"x": _streamed(keras_module, x, y, config)}
    else:
        arrays = {"x": x, "y": y, "batch_size": config.batch_size, "shuffle": True}
    model.fit(
        **arrays,
        epochs=config.epochs,
        steps_per_epoch=steps,
        verbose=0,
        callbacks=[*callbacks, reporter],
    )
    if reporter.cancelled:
        raise Cancelled("training cancelled; the model was left as it was")


def _streamed(keras_module: Any, x: Any, y: np.ndarray, config: CompressConfig) -> Any:
    """Shuffled batches of `x` (`LazyInputs`) read as Keras asks for them, reshuffled by the
    config's seed every epoch: a folder of images never held in memory whole."""
    size = config.batch_size

    class Batches(keras_module.utils.Sequence):
        def __init__(self) -> None:
            super().__init__()
            self.random = np.random.default_rng(config.seed)
            self.order = self.random.permutation(len(x))

        def __len__(self) -> int:
            return -(-len(x) // size)

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            positions = np.sort(self.order[index * size : (index + 1) * size])
            return x.take(positions)[:], y[positions]

        def on_epoch_end(self) -> None:
            self.order = self.random.permutation(len(x))

    return Batches()


def _reporter(
    keras_module: Any,
    config: CompressConfig,
    batches: int,
    validation: tuple[np.ndarray, np.ndarray],
    progress: Progress | None,
    cancel: threading.Event | None,
    logit: bool,
) -> Any:
    class Reporter(keras_module.callbacks.Callback):
        cancelled = False
        epoch = 0
        last = TrainingProgress(1, config.epochs, 0, batches, float("nan"))

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.epoch = epoch + 1

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.last = TrainingProgress(
                self.epoch, config.epochs, batch + 1, batches, float((logs or {}).get("loss", 0))
            )
            if progress is not None:
                progress(self.last)
            if cancel is not None and cancel.is_set():
                self.cancelled = True
                self.model.stop_training = True

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if self.cancelled or progress is None:
                return
            x, y = validation  # in batches: the split may be read from files
            parts = [self.model(part, training=False) for part in batches_of(x, 256)]
            predictions = np.concatenate([np.asarray(part) for part in parts])
            score = float(np.mean(top1_correct(predictions, y, logit)))
            progress(TrainingProgress(**{**self.last.__dict__, "val_accuracy": score}))

    return Reporter()
