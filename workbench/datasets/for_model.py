"""Data prepared for one model: what `Session` measures on, and what a sweep ships with a model.

A model with one input takes image data resized to its input size and preprocessed its way (a
published architecture's own preprocessing); a model with several inputs takes one array per
input, matched by input name (an `.npz` file, a dict) or by position (a list). `Preparation` is
everything the prepared data depends on besides the data itself, so equal preparations of the
same data give equal datasets (a sweep prepares and ships them once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.datasets.base import Dataset, Preprocessing
from workbench.errors import DataError

Shape = tuple[int | None, ...]


@dataclass(frozen=True)
class Preparation:
    """How data is made ready for a model: images resized to `image_size` (width, height),
    with the model's `channels`, and put through `preprocessing`; or, for a model with several
    inputs, one array per entry of `inputs` (input name and shape, in the model's input order).
    `model` names the model in error messages only (two models with equal preparations share
    their data)."""

    model: str = field(compare=False)
    image_size: tuple[int, int] | None = None
    channels: int | None = None  # images converted to gray (1) or RGB (3); None: as stored
    preprocessing: Preprocessing | None = None
    inputs: tuple[tuple[str, Shape], ...] = ()


def preparation(model: Any) -> Preparation:
    """The `Preparation` of data for a `ModelSource`."""
    if model.input_count > 1:
        return Preparation(model.name, inputs=_inputs(model))
    shape = model.input_shape
    known = len(shape) == 4 and None not in shape[1:3]
    return Preparation(
        model.name,
        image_size=(shape[2], shape[1]) if known else None,  # PIL sizes are (width, height)
        channels=shape[3] if len(shape) == 4 and shape[3] in (1, 3) else None,
        preprocessing=model.preprocessing,
    )


def _inputs(model: Any) -> tuple[tuple[str, Shape], ...]:
    """Each input's name and shape: a Keras model's, or its float `.tflite`'s by signature name."""
    if model.keras_model is not None:
        tensors = model.keras_model.inputs
        return tuple((tensor.name, tuple(tensor.shape)) for tensor in tensors)
    from workbench.engine.evaluation import model_inputs
    from workbench.engine.routes import float_tflite

    return tuple((name, (None, *shape)) for name, shape in model_inputs(float_tflite(model)))


def load_for_model(data: Any, model: Any) -> Dataset:
    """`data` (what `load_dataset` takes, or one array per input) prepared for a `ModelSource`."""
    return prepare(data, preparation(model))


def prepare(data: Any, how: Preparation) -> Dataset:
    """`data` prepared as `how` says; a `Dataset` is taken as it is (already prepared)."""
    from workbench.datasets import load_dataset

    if isinstance(data, Dataset):
        return data
    if how.inputs:
        return _several_inputs(data, how)
    return load_dataset(
        data, image_size=how.image_size, channels=how.channels, preprocessing=how.preprocessing
    )


def _several_inputs(data: Any, how: Preparation) -> Dataset:
    """Data for a model with several inputs: ``(xs, y)`` or ``xs``, with `xs` one array per
    input (a list in the model's input order, or a dict by input name), or an `.npz` file
    holding one array per input name (and `y`)."""
    from workbench.datasets.multi import from_input_arrays

    names = [name for name, _ in how.inputs]
    label = "arrays"
    if isinstance(data, str | Path) and str(data).endswith(".npz"):
        from workbench.datasets.user import npz_archive

        label = Path(data).stem
        with npz_archive(Path(data)) as npz:  # one array per input name, and y
            data = ({n: npz[n] for n in names if n in npz}, npz["y"] if "y" in npz else None)
    labelled = isinstance(data, tuple) and len(data) == 2
    xs, y = data if labelled and isinstance(data[0], list | tuple | dict) else (data, None)
    if not isinstance(xs, list | tuple | dict):
        raise DataError(
            f"data: model {how.model!r} has {len(names)} inputs ({', '.join(names)}); give "
            "(xs, y) or xs, with xs one array per input: a list in that order or a dict by name"
        )
    shapes = [shape for _, shape in how.inputs]
    return from_input_arrays(xs, y, names=names, shapes=shapes, name=label)
