"""Published architectures by name: ``mobilenet_v2``, ``resnet50@160``, ...

A spec is an architecture name, optionally ``@SIZE`` for a square input of SIZE pixels
(default 224). Weights are ``"imagenet"`` (from Keras' own cache, downloaded there when the
machine has internet; the default, unless ``WORKBENCH_WEIGHTS`` names another), ``"none"``
(random initialisation, the same one every time: seeded) or a weights file saved with
``model.save_weights()``. Each
architecture declares the preprocessing it expects of 8-bit images, which image data loaded
for it gets instead of the default 0..1 scaling.
"""

from __future__ import annotations

import os
import random
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.datasets.base import Preprocessing
from workbench.errors import ModelFileError

DEFAULT_SIZE = 224
WEIGHTS_ENV = "WORKBENCH_WEIGHTS"  # the default weights (set by `workbench dashboard --weights`)
KERAS_CACHE = Path("~/.keras/models")
RANDOM_SEED = 0  # "none" weights: one fixed random initialisation, the same in every process
_seeding = threading.Lock()

# What each architecture expects of RGB bytes 0..255 (keras.applications' preprocess_input).
TORCH_LIKE = Preprocessing(scale=1 / 127.5, offset=-1.0, description="RGB bytes to -1..1")
RAW = Preprocessing(description="RGB bytes 0..255 as given (the model rescales its input)")
CAFFE = Preprocessing(
    offset=(-103.939, -116.779, -123.68),
    reverse_channels=True,
    description="RGB bytes to BGR minus the ImageNet channel means (caffe)",
)


@dataclass(frozen=True)
class Architecture:
    """One keras.applications builder and the preprocessing its inputs need."""

    builder: str
    preprocessing: Preprocessing


ARCHITECTURES: dict[str, Architecture] = {
    "mobilenet_v2": Architecture("MobileNetV2", TORCH_LIKE),
    "mobilenet_v3_small": Architecture("MobileNetV3Small", RAW),
    "mobilenet_v3_large": Architecture("MobileNetV3Large", RAW),
    "efficientnet_b0": Architecture("EfficientNetB0", RAW),
    "resnet50": Architecture("ResNet50", CAFFE),
}


@dataclass(frozen=True)
class PretrainedSpec:
    """An architecture name, its square input size and where its weights come from."""

    architecture: str
    size: int = DEFAULT_SIZE
    weights: str = "imagenet"  # "imagenet", "none" or a weights file

    @property
    def name(self) -> str:
        return (
            self.architecture if self.size == DEFAULT_SIZE else f"{self.architecture}@{self.size}"
        )


def parse_spec(spec: Any, weights: str | None = None) -> PretrainedSpec | None:
    """The `PretrainedSpec` a string names (``name`` or ``name@SIZE``), else None."""
    if isinstance(spec, PretrainedSpec):
        return spec
    if not isinstance(spec, str):
        return None
    name, _, size = spec.partition("@")
    if name not in ARCHITECTURES:
        return None
    if size and not (size.isdigit() and int(size) >= 32):
        raise ModelFileError(
            f"model {spec!r}: the input size after @ must be a whole number of pixels, "
            f"at least 32 (e.g. {name}@160)"
        )
    weights = weights or os.environ.get(WEIGHTS_ENV) or "imagenet"
    return PretrainedSpec(name, int(size) if size else DEFAULT_SIZE, weights)


def build(spec: PretrainedSpec) -> Any:
    """The Keras model of `spec`, with its weights; one-line `ModelFileError`s otherwise."""
    import keras

    builder = getattr(keras.applications, ARCHITECTURES[spec.architecture].builder)
    shape = (spec.size, spec.size, 3)
    if spec.weights == "imagenet":
        try:
            return builder(weights="imagenet", input_shape=shape)
        except Exception as error:  # Keras raises several types, offline or for a bad size
            raise ModelFileError(_imagenet_failure(spec, str(error))) from None
    try:
        model = _seeded(builder, shape)
    except ValueError as error:
        raise ModelFileError(f"{spec.name}: {str(error).splitlines()[0][:200]}") from None
    if spec.weights != "none":
        _load_weights(model, Path(spec.weights), spec.name)
    return model


def _seeded(builder: Any, shape: tuple[int, int, int]) -> Any:
    """`builder` with random weights drawn from `RANDOM_SEED`: Keras seeds each unseeded
    initializer from Python's `random`, whose state is set for the build and then restored."""
    with _seeding:
        state = random.getstate()
        random.seed(RANDOM_SEED)
        try:
            return builder(weights=None, input_shape=shape)
        finally:
            random.setstate(state)


def _imagenet_failure(spec: PretrainedSpec, message: str) -> str:
    """One line: the download failed (then say where the file goes) or Keras refused."""
    url = re.search(r"https?://\S+?\.h5", message)
    if url is None:
        reason = (message.splitlines() or ["unknown reason"])[0][:200]
        return f"{spec.name}: no ImageNet weights ({reason}); use --weights none or a FILE"
    return (
        f"{spec.name}: cannot download the ImageNet weights (no internet?); use --weights none "
        f"(random weights), give --weights FILE, or put {url.group(0).rsplit('/', 1)[-1]} "
        f"in {KERAS_CACHE}"
    )


def check_weights(weights: str | None) -> None:
    """Refuse `--weights` that is neither imagenet, none nor an existing file."""
    if weights not in (None, "imagenet", "none") and not Path(weights).is_file():
        raise ModelFileError(
            f"--weights {weights}: no such file; give imagenet, none or a file saved with "
            "model.save_weights()"
        )


def _load_weights(model: Any, path: Path, name: str) -> None:
    check_weights(str(path))
    try:
        model.load_weights(path)
    except Exception as error:  # h5py and Keras raise many types for a wrong file
        reason = (str(error).splitlines() or [type(error).__name__])[0][:160]
        raise ModelFileError(
            f"--weights {path}: does not fit {name} ({reason}); save the weights of the same "
            "architecture and input size with model.save_weights()"
        ) from None
