"""The loaded-model container: whatever the user gave, in the forms the routes need."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from workbench.once import OnceCache


class SourceKind(StrEnum):
    KERAS = "keras"  # a Keras 3 model object, .keras or .h5 file
    SAVED_MODEL = "saved_model"  # a SavedModel directory
    CONCRETE_FUNCTION = "concrete_function"  # tf.function concrete functions
    TFLITE = "tflite"  # a .tflite flatbuffer (float or already quantized)


@dataclass(frozen=True, eq=False, repr=False)
class ModelSource:
    """A model ready for conversion and inspection.

    Exactly the field for `kind` is set among `keras_model`, `saved_model_dir`,
    `concrete_functions` and `tflite_bytes`. `fingerprint` is a content hash that keys caches;
    `derived` keeps what the routes made from the model (its float32 `.tflite`) as long as it lives.
    `input_shape` includes the batch dimension (None); `num_classes` is the width of the output
    when it is a classifier's vector of scores, else None. `preprocessing`, when set, is what
    8-bit image data must go through to feed this model (a published architecture's own).
    """

    name: str
    kind: SourceKind
    fingerprint: str
    input_shape: tuple[int | None, ...]
    num_classes: int | None
    input_count: int = 1  # model inputs; the workbench evaluates models with one
    keras_model: Any = None
    saved_model_dir: Path | None = None
    concrete_functions: tuple[Any, ...] = ()
    tflite_bytes: bytes | None = None
    preprocessing: Any = None  # workbench.datasets.Preprocessing
    derived: OnceCache[Any] = field(default_factory=OnceCache)

    def __repr__(self) -> str:
        return f"ModelSource({self.name!r}, {self.kind.value}, input={self.input_shape})"
