"""The TFLiteConverter route: float32, dynamic, float16, int8 (float/int8/uint8 I/O), int16x8.

int8 calibrates once per (model, samples) with `_experimental_calibrate_only`, then each
variant is a fast `mlir_quantize` of the calibrated model (per-tensor and keep-float included).
int16x8 uses the converter's own int16 path (its MLIR quantizer cannot make int16 models), which
calibrates again; keep-float is not available there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
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
from workbench.errors import UnsupportedError
from workbench.models.source import ModelSource, SourceKind
from workbench.qtyping import Granularity, IOType, Mode, QuantConfig, Route

_FLOAT_CACHE: dict[str, bytes] = {}
_FLOAT_LOCK = threading.Lock()


def _converter(model: ModelSource) -> Any:
    import tensorflow as tf

    if model.kind is SourceKind.KERAS:
        return tf.lite.TFLiteConverter.from_keras_model(model.keras_model)
    if model.kind is SourceKind.SAVED_MODEL:
        return tf.lite.TFLiteConverter.from_saved_model(str(model.saved_model_dir))
    if model.kind is SourceKind.CONCRETE_FUNCTION:
        return tf.lite.TFLiteConverter.from_concrete_functions(list(model.concrete_functions))
    raise _not_from_tflite(model)


def _not_from_tflite(model: ModelSource) -> UnsupportedError:
    return UnsupportedError(
        f"model {model.name!r}: a .tflite file cannot be re-converted by the TFLite converter; "
        "use route litert for it"
    )


def _representative(x: np.ndarray) -> Callable[[], Iterator[list[np.ndarray]]]:
    def generate() -> Iterator[list[np.ndarray]]:
        for index in range(len(x)):
            yield [x[index : index + 1]]

    return generate


def _run(model: ModelSource, what: str, setup: Callable[[Any], None]) -> bytes:
    """Build a converter, apply `setup`, convert silently; failures become ConversionError."""
    with silenced() as capture:
        try:
            converter = _converter(model)
            setup(converter)
            return bytes(converter.convert())
        except UnsupportedError:
            raise
        except Exception as error:  # the converter raises many types, all with long text
            failure = error
    float_tflite = ConverterRoute().float_tflite
    raise explain(model, what, failure, capture.text, lambda: float_tflite(model)) from None


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
        if model.kind is SourceKind.TFLITE:
            return model.tflite_bytes
        with _FLOAT_LOCK:
            if model.fingerprint not in _FLOAT_CACHE:
                _FLOAT_CACHE[model.fingerprint] = _run(model, "float32", lambda c: None)
            return _FLOAT_CACHE[model.fingerprint]

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

    def calibrated(self, model: ModelSource, samples: int, calibration: Calibration) -> bytes:
        """The float model with calibration statistics, made once per (model, data, samples)."""
        import tensorflow as tf

        x = calibration.samples(samples)

        def setup(converter: Any) -> None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = _representative(x)
            converter._experimental_calibrate_only = True  # noqa: SLF001

        key = ("converter", model.fingerprint, samples)
        return calibration.prepare(key, lambda: _run(model, "the calibrated model", setup))

    def _int8(self, model: ModelSource, config: QuantConfig, calibration: Calibration) -> bytes:
        from tensorflow.lite.python import convert

        calibrated = self.calibrated(model, config.calibration_samples, calibration)
        denylisted = []
        if config.keep_float:
            names = model_layer_names(model)
            found = ops_of_layers(calibrated, config.keep_float, names)
            denylisted = sorted(t for tensors in found.values() for t in tensors)
        with silenced() as capture:
            try:
                return bytes(
                    convert.mlir_quantize(
                        calibrated,
                        disable_per_channel=config.granularity is Granularity.PER_TENSOR,
                        input_data_type=_dtype(config.io_type),
                        output_data_type=_dtype(config.io_type),
                        denylisted_nodes=denylisted or None,
                    )
                )
            except Exception as error:  # pybind raises plain exceptions with MLIR text
                failure = error
        raise explain(model, config.label, failure, capture.text)

    def _int16x8(self, model: ModelSource, config: QuantConfig, calibration: Calibration) -> bytes:
        import tensorflow as tf

        x = calibration.samples(config.calibration_samples)
        ops_set = tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8

        def setup(converter: Any) -> None:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = _representative(x)
            converter.target_spec.supported_ops = [ops_set]
            _set_per_tensor(converter, config)

        key = ("converter-int16x8", model.fingerprint, config.key)
        return calibration.prepare(key, lambda: _run(model, config.label, setup))


_MODES: dict[Mode, Callable[..., bytes]] = {
    Mode.FLOAT32: ConverterRoute._float32,
    Mode.DYNAMIC: ConverterRoute._dynamic,
    Mode.FLOAT16: ConverterRoute._float16,
    Mode.INT8: ConverterRoute._int8,
    Mode.INT16X8: ConverterRoute._int16x8,
}
