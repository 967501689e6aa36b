"""The TFLiteConverter route: float32, dynamic, float16, int8 (float/int8/uint8 I/O), int16x8.

float32, dynamic and float16 are one `TFLiteConverter.convert()` each. The integer modes do what
`convert()` does inside, split so that the work is shared: TF's `Calibrator` runs the samples
through the float32 model once per (model, samples); each int8 variant is then `mlir_quantize` of
the calibrated model (per-tensor and keep-float included) and each int16x8 variant is the same
calibrator's `QuantizeModel` (the converter's int16 path; keep-float is not available there).
The files carry the same tensors, quantization and outputs as `convert()`'s; only the
conversion-options metadata differs.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.engine.calibration import Calibration
from workbench.engine.quiet import silenced
from workbench.engine.routes import register
from workbench.engine.routes.failures import explain
from workbench.engine.routes.layers import (
    model_layer_names,
    ops_of_layers,
)
from workbench.errors import UnsupportedError, raise_if_interrupted
from workbench.models.source import ModelSource, SourceKind
from workbench.qtyping import Granularity, IOType, Mode, QuantConfig, Route

_CONVERTING = threading.RLock()  # one TensorFlow conversion at a time, whichever thread asks


@dataclass(frozen=True)
class Calibrated:
    """The float model with calibration statistics, and TF's calibrator that recorded them."""

    model: bytes
    calibrator: Any  # tensorflow.lite.python.optimize.calibrator.Calibrator, fed once
    lock: threading.Lock = field(default_factory=threading.Lock)  # it quantizes one at a time


def tflite_converter(model: ModelSource) -> Any:
    """A fresh `TFLiteConverter` of the model, as every conversion on this route starts: for a
    Keras model, from its inference call traced once (`_traced`, `_converted_key`)."""
    import tensorflow as tf

    if model.kind is SourceKind.KERAS:
        key = _converted_key(model)
        traced = (
            inference_function(model)
            if key == "traced"
            else model.derived.get(key, lambda: _traced(model.keras_model, batch=1))
        )
        if traced is not None:
            return tf.lite.TFLiteConverter.from_concrete_functions([traced])
        return tf.lite.TFLiteConverter.from_keras_model(model.keras_model)
    if model.kind is SourceKind.SAVED_MODEL:
        return tf.lite.TFLiteConverter.from_saved_model(str(model.saved_model_dir))
    if model.kind is SourceKind.CONCRETE_FUNCTION:
        return tf.lite.TFLiteConverter.from_concrete_functions(list(model.concrete_functions))
    raise _not_from_tflite(model)


def inference_function(model: ModelSource) -> Any:
    """A Keras model's inference call traced once and kept with the model (None for other
    kinds of model and subclassed Keras models): the converter converts it, the session runs
    it for the float reference outputs."""
    if model.kind is not SourceKind.KERAS:
        return None
    return model.derived.get("traced", lambda: _traced(model.keras_model))


def _converted_key(model: ModelSource) -> str:
    """Which traced call the converter converts: the inference function (``traced``), or for
    a model with recurrent layers the same call at batch size 1 (``traced-batch-1``): the
    converter needs the element shape of their loop's tensor list static (TensorListReserve),
    and LiteRT runs the file one sample at a time."""
    import keras

    def recurrent(layers: Any) -> bool:
        return any(
            isinstance(layer, keras.layers.RNN | keras.layers.Bidirectional)
            or recurrent(getattr(layer, "layers", ()))
            for layer in layers
        )

    return "traced-batch-1" if recurrent(model.keras_model.layers) else "traced"


def _traced(keras_model: Any, batch: int | None = None) -> Any:
    """The model's inference call (``training=False``) traced once as a concrete function, or
    None for a model without symbolic inputs (subclassed and never built on an `Input`), with
    several inputs, or one that does not trace so (the converter then exports it, as before).

    `from_keras_model` exports the model to a temporary SavedModel on every call (tracing its
    functions again each time: most of a conversion at 224x224); the converter freezes this
    one function instead, which gives the same ops, tensors and outputs but no signature
    (`_run` adds Keras' own).
    """
    import tensorflow as tf

    try:
        inputs = list(keras_model.inputs)
    except (AttributeError, ValueError):  # a subclassed model: from_keras_model traces it
        return None
    if len(inputs) != 1:  # from_keras_model orders several inputs its own way: keep its files
        return None
    specs = [
        tf.TensorSpec((batch or t.shape[0], *t.shape[1:]), t.dtype, name=t.name) for t in inputs
    ]

    def call(x: Any) -> Any:
        return keras_model(x, training=False)

    try:  # callers run it silenced
        return tf.function(call, input_signature=specs, autograph=False).get_concrete_function()
    except Exception as error:  # noqa: BLE001 - TF raises many types; from_keras_model remains
        raise_if_interrupted(error)
        return None


def _signed(model: ModelSource, tflite: bytes) -> bytes:
    """The file with the signature `from_keras_model` gives it (key ``serving_default``, the
    Keras input names, outputs ``output_0``, ...) when it came from the traced function."""
    if model.kind is not SourceKind.KERAS or model.derived.peek(_converted_key(model)) is None:
        return tflite
    from workbench.tflite_edit import with_signature

    names = [f"output_{index}" for index in range(len(model.keras_model.outputs))]
    return with_signature(tflite, output_names=names)


def _not_from_tflite(model: ModelSource) -> UnsupportedError:
    return UnsupportedError(
        f"model {model.name!r}: a .tflite file cannot be re-converted by the TFLite converter; "
        "use route litert for it"
    )


def _representative(x: Any, float_tflite: bytes) -> Callable[[], Iterator[list[np.ndarray]]]:
    """One sample at a time, one array per model input, in the float file's input order."""
    from workbench.engine.evaluation import input_feeds

    def generate() -> Iterator[list[np.ndarray]]:
        for feed in input_feeds(float_tflite, x):
            yield list(feed.values())

    return generate


@contextlib.contextmanager
def _explained(model: ModelSource, what: str) -> Iterator[None]:
    """Run the block silenced; an exception from TensorFlow (many types, all with long text)
    becomes the one-line error `explain` makes of it and the captured output."""
    with silenced() as capture:
        try:
            yield
        except UnsupportedError:
            raise
        except Exception as error:
            raise_if_interrupted(error)
            failure = error
        else:
            return
    float_tflite = ConverterRoute().float_tflite
    raise explain(model, what, failure, capture.text, lambda: float_tflite(model)) from None


def _run(model: ModelSource, what: str, setup: Callable[[Any], None]) -> bytes:
    """Build a converter, apply `setup` and convert, silently and one at a time."""
    with _CONVERTING, _explained(model, what):
        converter = tflite_converter(model)
        setup(converter)
        return _signed(model, bytes(converter.convert()))


def _set_per_tensor(converter: Any, config: QuantConfig) -> None:
    converter._experimental_disable_per_channel = (  # noqa: SLF001
        config.granularity is Granularity.PER_TENSOR
    )


def _dtype(io_type: IOType) -> Any:
    import tensorflow as tf

    return {IOType.FLOAT32: tf.float32, IOType.INT8: tf.int8, IOType.UINT8: tf.uint8}[io_type]


@register(Route.CONVERTER)
class ConverterRoute:
    """tf.lite.TFLiteConverter with post-training quantization options."""

    def float_tflite(self, model: ModelSource) -> bytes:
        if model.kind is SourceKind.TFLITE:  # as given, float16 weights expanded, signed
            from workbench.tflite_edit import float32_tflite

            return model.derived.get("float32", lambda: float32_tflite(model.tflite_bytes))
        with _CONVERTING:  # taken before the cache's key lock, as every conversion takes it
            return model.derived.get("float32", lambda: _run(model, "float32", lambda c: None))

    def convert(self, model: ModelSource, config: QuantConfig, calibration: Calibration) -> bytes:
        if model.kind is SourceKind.TFLITE and config.mode is not Mode.FLOAT32:
            raise _not_from_tflite(model)
        if config.keep_float and config.mode is not Mode.INT8:
            raise UnsupportedError(
                f"keep_float: the converter route keeps layers float only in int8 mode, not "
                f"{config.mode.value}; use route litert for {config.mode.value} with float layers"
            )
        return _MODES[config.mode](self, model, config, calibration)

    def _float32(self, model: ModelSource, config: QuantConfig, calibration: Calibration) -> bytes:
        return self.float_tflite(model)

    def _dynamic(self, model: ModelSource, config: QuantConfig, calibration: Calibration) -> bytes:
        import tensorflow as tf

        def setup(converter: Any) -> None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            _set_per_tensor(converter, config)

        return _run(model, config.label, setup)

    def _float16(self, model: ModelSource, config: QuantConfig, calibration: Calibration) -> bytes:
        import tensorflow as tf

        def setup(converter: Any) -> None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]

        return _run(model, config.label, setup)

    def calibrated(self, model: ModelSource, samples: int, calibration: Calibration) -> Calibrated:
        """The float model calibrated on the samples, made once per (model, data, samples)."""
        x = calibration.samples(samples)
        key = ("converter", model.fingerprint, samples)
        return calibration.prepare(key, lambda: self._calibrate(model, x))

    def _calibrate(self, model: ModelSource, x: Any) -> Calibrated:
        from tensorflow.lite.python.optimize import calibrator

        from workbench.tflite_file import read_tflite

        float_tflite = self.float_tflite(model)
        if any(op.opcode == "WHILE" for op in read_tflite(float_tflite).ops):
            raise UnsupportedError(  # TF's calibrator ends the process (segfault) on one
                f"model {model.name!r}: the TFLite calibrator cannot run a WHILE loop (a "
                "recurrent layer) without crashing; use dynamic or float16"
            )
        with _explained(model, "calibration"):
            tool = calibrator.Calibrator(calibrator.add_intermediate_tensors(float_tflite))
            return Calibrated(bytes(tool.calibrate(_representative(x, float_tflite))), tool)

    def _int8(self, model: ModelSource, config: QuantConfig, calibration: Calibration) -> bytes:
        from tensorflow.lite.python import convert

        calibrated = self.calibrated(model, config.calibration_samples, calibration).model
        denylisted = []
        if config.keep_float:
            names = model_layer_names(model)
            found = ops_of_layers(calibrated, config.keep_float, names)
            denylisted = sorted(t for tensors in found.values() for t in tensors)
        with _explained(model, config.label):
            return bytes(
                convert.mlir_quantize(
                    calibrated,
                    disable_per_channel=config.granularity is Granularity.PER_TENSOR,
                    input_data_type=_dtype(config.io_type),
                    output_data_type=_dtype(config.io_type),
                    denylisted_nodes=denylisted or None,
                )
            )

    def _int16x8(self, model: ModelSource, config: QuantConfig, calibration: Calibration) -> bytes:
        if config.granularity is Granularity.PER_TENSOR:
            self._refuse_depthwise_per_tensor(model)
        calibrated = self.calibrated(model, config.calibration_samples, calibration)
        with calibrated.lock, _explained(model, config.label):
            return bytes(
                calibrated.calibrator._calibrator.QuantizeModel(  # noqa: SLF001
                    np.dtype(np.float32).num,  # input and output stay float32,
                    np.dtype(np.float32).num,
                    False,  # no float fallback, as with the int16x8 ops set alone,
                    np.dtype(np.int16).num,  # int16 activations,
                    np.dtype(np.int64).num,  # int64 biases: what convert() passes
                    config.granularity is Granularity.PER_TENSOR,
                    False,
                )
            )

    def _refuse_depthwise_per_tensor(self, model: ModelSource) -> None:
        """TF's int16x8 quantizer fails on every per-tensor depthwise kernel ("quantized
        dimension ... do not match. Got 3 and 0"); say so before calibrating (for a Keras
        model from its layers, without converting)."""
        if model.keras_model is not None:
            from workbench.folding import quantizable_kernels

            kernels = quantizable_kernels(model.keras_model)
            layer = next((k.layer for k in kernels if k.kind == "DepthwiseConv2D"), None)
            if layer is not None:
                raise _no_depthwise_per_tensor(model, layer)
            return
        from workbench.tflite_file import op_layers, read_tflite

        parsed = read_tflite(self.float_tflite(model))
        depthwise = [op for op in parsed.ops if op.opcode == "DEPTHWISE_CONV_2D"]
        if not depthwise:
            return
        op = depthwise[0]
        layer = op_layers(parsed, model_layer_names(model)).get(op.index)
        raise _no_depthwise_per_tensor(model, layer or parsed.tensors[op.outputs[0]].name)


def _no_depthwise_per_tensor(model: ModelSource, layer: str) -> UnsupportedError:
    return UnsupportedError(
        f"model {model.name!r}: int16x8 per-tensor: the converter cannot quantize depthwise "
        f"layer {layer!r} per-tensor in int16x8; use per-channel, or route litert"
    )


_MODES: dict[Mode, Callable[..., bytes]] = {
    Mode.FLOAT32: ConverterRoute._float32,
    Mode.DYNAMIC: ConverterRoute._dynamic,
    Mode.FLOAT16: ConverterRoute._float16,
    Mode.INT8: ConverterRoute._int8,
    Mode.INT16X8: ConverterRoute._int16x8,
}
