"""Converter failures as one line naming the op, its Keras layer and what to do."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from workbench.errors import ConversionError, UnsupportedError, WorkbenchError

_NO_INT16 = re.compile(r"16x8-bit not yet supported for op: '(\w+)'")
_FLEX = re.compile(r"'(tf\.\w+)' op is neither a custom op nor a flex op")
# the op's scope: ``fused["Erf:", "m_1/odd_1/Erf@..."]`` from a SavedModel export,
# ``fused["Erf:", callsite("m_1/odd_1/Erf"(...`` from a traced function
_SCOPE = re.compile(r'fused\["[^"]*", (?:callsite\()?"([^"@]+)')


def _all_layers(model: Any) -> list[str]:
    keras_model = getattr(model, "keras_model", None)
    return [layer.name for layer in keras_model.layers] if keras_model is not None else []


def _layer_of_opcode(
    float_tflite: Callable[[], bytes] | None, opcode: str, layers: list[str]
) -> str | None:
    """The Keras layer of the first op with this builtin opcode in the float model."""
    if float_tflite is None or not layers:
        return None
    from workbench.tflite_file import op_layers, read_tflite

    try:
        parsed = read_tflite(float_tflite())
    except WorkbenchError:  # the float model does not convert either: no layer to name
        return None
    owners = op_layers(parsed, layers)
    return next((owners[op.index] for op in parsed.ops if op.opcode == opcode), None)


def explain(
    model: Any,
    what: str,
    error: BaseException,
    log: str,
    float_tflite: Callable[[], bytes] | None = None,
) -> WorkbenchError:
    """The `WorkbenchError` to raise for a converter exception `error` with captured `log`;
    `float_tflite()` gives the float model, to find the layer of an op named by opcode."""
    text = f"{error}\n{log}"
    layers = _all_layers(model)
    prefix = f"model {model.name!r}: {what}"
    if found := _NO_INT16.search(text):
        opcode = found.group(1)
        layer = _layer_of_opcode(float_tflite, opcode, layers)
        where = f" (layer {layer})" if layer else ""
        return UnsupportedError(
            f"{prefix}: op {opcode}{where} has no int16x8 kernel in TFLite; use int8, or route "
            "litert, which leaves such ops in float"
        )
    if found := _FLEX.search(text):
        scope = _SCOPE.search(text)
        from workbench.tflite_file import layer_of

        layer = layer_of(scope.group(1), layers) if scope else None
        where = f" in layer {layer}" if layer else ""
        return ConversionError(
            f"{prefix}: op {found.group(1)}{where} has no TFLite builtin kernel (it needs TF "
            "Select); replace it with supported ops before converting"
        )
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(error).__name__)
    return ConversionError(
        f"{prefix}: the converter failed ({first[:200]}); try another mode or route litert"
    )
