"""Keras layer names to the TFLite ops that implement them (for keep-float lists)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from workbench.errors import UnsupportedError


def op_outputs(tflite: bytes) -> list[tuple[str, str]]:
    """(opcode name, first output tensor name) of every op of the main graph."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=tflite)
    tensors = {detail["index"]: detail["name"] for detail in interpreter.get_tensor_details()}
    return [
        (op["op_name"], tensors[op["outputs"][0]])
        for op in interpreter._get_ops_details()  # noqa: SLF001  (the only public op listing)
        if len(op["outputs"])
    ]


def layer_of(tensor_name: str, layer_names: Sequence[str]) -> str | None:
    """The Keras layer a TFLite tensor name belongs to (``model_1/conv2_1/Relu`` -> conv2)."""
    names = set(layer_names)
    if tensor_name in names:
        return tensor_name
    for part in tensor_name.split(";"):
        for segment in part.split("/"):
            base = re.sub(r"_\d+$", "", segment)
            for candidate in (segment, base):
                if candidate in names:
                    return candidate
    return None


def ops_of_layers(
    tflite: bytes, keep_float: Iterable[str], layer_names: Sequence[str]
) -> dict[str, list[str]]:
    """Output tensor names of the ops of each keep-float layer; unknown layers are an error."""
    wanted = sorted(keep_float)
    unknown = [name for name in wanted if name not in layer_names]
    if unknown:
        raise UnsupportedError(
            f"keep_float: no quantizable layer named {', '.join(map(repr, unknown))}; "
            f"choose from {', '.join(layer_names) or '(none)'}"
        )
    found: dict[str, list[str]] = {name: [] for name in wanted}
    for _, tensor in op_outputs(tflite):
        layer = layer_of(tensor, layer_names)
        if layer in found:
            found[layer].append(tensor)
    missing = [name for name, tensors in found.items() if not tensors]
    if missing:
        raise UnsupportedError(
            f"keep_float: layer {', '.join(map(repr, missing))} has no op of its own in the "
            "converted model (the converter fused it into a neighbour); keep that neighbour float"
        )
    return found


def model_layer_names(model) -> list[str]:
    """Names keep_float may use: Keras layer names, else the TFLite op output tensor names."""
    if model.keras_model is not None:
        return [layer.name for layer in model.keras_model.layers]
    return []
