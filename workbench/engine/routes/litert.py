"""The LiteRT Quantizer route: the float `.tflite` once, then `litert_quantizer` recipes.

Modes map to recipes: dynamic = dynamic_wi8_afp32, int8 = static_wi8_ai8, int16x8 =
static_wi8_ai16, int4 = weight_only_wi4_afp32, float16 = the quantizer's own float-casting
weight-only config (float16 weights). Granularity is the weight granularity of the recipe;
keep-float layers get a `no_quantize` entry for each of their ops, and a configuration's
per-layer precisions (`QuantConfig.layer_precision`) one entry each, scoped to that layer's ops.
The calibration result is computed once per (model, samples) and reused by every static
variant. `recipe` gives the quantizer's own JSON recipe of a variant. `.tflite` inputs work.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any

from workbench.engine.calibration import Calibration
from workbench.engine.quiet import silenced
from workbench.engine.routes import ROUTES, register
from workbench.engine.routes.layers import model_layer_names, ops_of_layers
from workbench.errors import ConversionError, UnsupportedError, raise_if_interrupted
from workbench.models.source import ModelSource, SourceKind
from workbench.qtyping import Granularity, IOType, LayerPrecision, Mode, QuantConfig, Route

INT4_OPS = ("CONV_2D", "FULLY_CONNECTED")  # what the quantizer's static_wi4_ai8 policy allows


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """The quantizer's own tqdm bars off: they write to `sys.stderr`, which `silenced()` (file
    descriptors only) leaves alone. Inside `silenced()`, whose lock makes it one call at a time."""
    from litert_quantizer.utils import progress_utils

    original = progress_utils.ProgressBar

    def disabled(*args: Any, **options: Any) -> Any:  # callers may pass enable=None (models
        return original(*args, **{**options, "enable": False})  # of 100+ tensors: shown)

    progress_utils.ProgressBar = disabled
    try:
        yield
    finally:
        progress_utils.ProgressBar = original


def _granularity(config: QuantConfig) -> Any:
    from litert_quantizer import qtyping

    if config.granularity is Granularity.PER_TENSOR:
        return qtyping.QuantGranularity.TENSORWISE
    return qtyping.QuantGranularity.CHANNELWISE


def _dynamic(quantizer: Any, config: QuantConfig) -> None:
    quantizer.add_dynamic_config(".*", "*", 8, _granularity(config))


def _int8(quantizer: Any, config: QuantConfig) -> None:
    quantizer.add_static_config(".*", "*", 8, 8, _granularity(config))


def _int16x8(quantizer: Any, config: QuantConfig) -> None:
    quantizer.add_static_config(".*", "*", 16, 8, _granularity(config))


def _int4(quantizer: Any, config: QuantConfig) -> None:
    quantizer.add_weight_only_config(".*", "*", 4, _granularity(config))


def _float16(quantizer: Any, config: QuantConfig) -> None:
    from litert_quantizer import qtyping
    from litert_quantizer.algorithm_manager import AlgorithmName

    weights = qtyping.TensorQuantizationConfig(num_bits=16, dtype=qtyping.TensorDataType.FLOAT)
    op_config = qtyping.OpQuantizationConfig(
        weight_tensor_config=weights,
        compute_precision=qtyping.ComputePrecision.FLOAT,
        explicit_dequantize=True,
    )
    quantizer.update_quantization_recipe(".*", "*", op_config, AlgorithmName.FLOAT_CASTING)


def _layer_recipe(quantizer: Any, regex: str, precision: LayerPrecision) -> None:
    """One layer's entry; later entries win over the global one in the quantizer's recipe."""
    from litert_quantizer import qtyping

    channelwise = qtyping.QuantGranularity.CHANNELWISE
    tensorwise = qtyping.QuantGranularity.TENSORWISE
    activations, weights, granularity = {
        LayerPrecision.INT16X8: (16, 8, channelwise),
        LayerPrecision.INT8: (8, 8, channelwise),
        LayerPrecision.INT8_PER_TENSOR: (8, 8, tensorwise),
        LayerPrecision.INT4: (8, 4, channelwise),
    }[precision]
    quantizer.add_static_config(regex, "*", activations, weights, granularity)


_RECIPES: dict[Mode, Callable[[Any, QuantConfig], None]] = {
    Mode.DYNAMIC: _dynamic,
    Mode.FLOAT16: _float16,
    Mode.INT8: _int8,
    Mode.INT16X8: _int16x8,
    Mode.INT4: _int4,
}


def _failed(
    model: ModelSource, doing: str, failure: BaseException, capture: Any, hint: str
) -> ConversionError:
    """The quantizer's failure `doing` something, in one line, with what else to try."""
    reason = str(failure).splitlines()[0][:200] if str(failure) else capture.tail(2)
    return ConversionError(
        f"model {model.name!r}: the LiteRT Quantizer failed {doing} ({reason}); try another "
        f"mode or {hint}"
    )


def _require_float_weights(model: ModelSource, tflite: bytes) -> None:
    """A `.tflite` whose weights are already quantized cannot be quantized again."""
    from workbench.tflite_file import quantized_weights

    quantized = quantized_weights(tflite)
    if quantized:
        raise UnsupportedError(
            f"model {model.name!r}: the .tflite is already quantized ({', '.join(quantized)} "
            "weights); give the float32 model (.keras, SavedModel or float .tflite) instead"
        )


def _check_int4(float_bytes: bytes, config: QuantConfig, found: dict[str, list[str]]) -> None:
    """int4 weights on an op the quantizer cannot give them would silently stay int8: refuse."""
    from workbench.engine.routes.layers import op_outputs

    opcodes = {tensor: opcode for opcode, tensor in op_outputs(float_bytes)}
    for layer, precision in config.layer_precision:
        wrong = sorted({opcodes[t] for t in found[layer]} - set(INT4_OPS))
        if precision is LayerPrecision.INT4 and wrong:
            raise UnsupportedError(
                f"layer_precision: layer {layer!r} is a {', '.join(wrong)}; int4 weights exist "
                f"for {' and '.join(INT4_OPS)} only, give it int8 or int16x8"
            )


@register(Route.LITERT)
class LitertRoute:
    """ai-edge / LiteRT Quantizer recipes applied to the float `.tflite`."""

    def float_tflite(self, model: ModelSource) -> bytes:
        return ROUTES[Route.CONVERTER].float_tflite(model)

    def convert(self, model: ModelSource, config: QuantConfig, calibration: Calibration) -> bytes:
        if config.io_type is not IOType.FLOAT32:
            raise UnsupportedError(
                f"io_type {config.io_type.value}: the litert route keeps the model's I/O types; "
                "use route converter for integer model I/O"
            )
        float_bytes = self.float_tflite(model)
        if config.mode is Mode.FLOAT32:
            return float_bytes
        if model.kind is SourceKind.TFLITE:  # the converter's float32 file is float already
            _require_float_weights(model, float_bytes)
        result = None
        if config.mode.needs_calibration:
            result = self.calibration_result(model, config.calibration_samples, calibration)
        with silenced() as capture, _no_progress_bars():
            try:
                quantizer = self._quantizer(model, float_bytes, config)
                quantized = quantizer.quantize(result, enable_progress_report=False)
                return bytes(quantized.quantized_model)
            except UnsupportedError:
                raise
            except Exception as error:  # the quantizer raises ValueError/RuntimeError/...
                raise_if_interrupted(error)
                failure = error
        raise _failed(
            model, f"making {config.label}", failure, capture, "keep the named layer float"
        )

    def _quantizer(self, model: ModelSource, float_bytes: bytes, config: QuantConfig) -> Any:
        from litert_quantizer import Quantizer
        from litert_quantizer.algorithm_manager import AlgorithmName

        quantizer = Quantizer(float_bytes)
        _RECIPES[config.mode](quantizer, config)
        for end in ("INPUT", "OUTPUT"):  # model I/O stays float32, as on the converter route
            quantizer.update_quantization_recipe(".*", end, None, AlgorithmName.NO_QUANTIZE)
        layers = config.layers
        if layers:
            found = ops_of_layers(float_bytes, layers, model_layer_names(model))
            _check_int4(float_bytes, config, found)
            for layer, precision in layers.items():
                for tensor in sorted(found[layer]):
                    regex = f"^{re.escape(tensor)};"
                    if precision is LayerPrecision.FLOAT32:
                        quantizer.update_quantization_recipe(
                            regex, "*", None, AlgorithmName.NO_QUANTIZE
                        )
                    else:
                        _layer_recipe(quantizer, regex, precision)
        return quantizer

    def recipe(self, model: ModelSource, config: QuantConfig) -> list[dict[str, Any]]:
        """The LiteRT Quantizer recipe (its JSON form) that makes `config` from the float file."""
        if config.mode is Mode.FLOAT32:
            raise UnsupportedError("recipe: float32 is the float .tflite itself; it has no recipe")
        with silenced():
            quantizer = self._quantizer(model, self.float_tflite(model), config)
            return quantizer.get_quantization_recipe()

    def calibration_result(self, model: ModelSource, samples: int, calibration: Calibration):
        """Per-tensor min/max from the calibration samples, computed once per model."""
        x = calibration.samples(samples)
        float_bytes = self.float_tflite(model)

        def build() -> dict[str, Any]:
            from ai_edge_litert.interpreter import Interpreter
            from litert_quantizer import Quantizer

            from workbench.engine.evaluation import input_feeds

            # the float file always has one: `float_tflite` signs a .tflite that had none
            signatures = Interpreter(model_content=float_bytes).get_signature_list()
            key = next(iter(signatures))
            with silenced() as capture, _no_progress_bars():
                try:
                    quantizer = Quantizer(float_bytes)
                    quantizer.add_static_config(".*", "*", 8, 8)
                    return quantizer.calibrate({key: list(input_feeds(float_bytes, x))})
                except Exception as error:  # the quantizer raises ValueError/RuntimeError/...
                    raise_if_interrupted(error)
                    failure = error
            raise _failed(model, "calibrating", failure, capture, "route converter")

        return calibration.prepare(("litert", model.fingerprint, samples), build)
