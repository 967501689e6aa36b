"""What got quantized: per-layer dtypes before and after, inserted ops, I/O types, bytes."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from workbench.widgets import html
from workbench.widgets.state import AppState
from workbench.widgets.view import View, heading, styled


def _arrow(before: Any, after: Any) -> str:
    return str(after) if before == after else f"{before} → {after}"


def quantized_html(before: Any, after: Any, label: str) -> str:
    """Tables from two `tflite_file.QuantizationSummary` (float model, current variant)."""
    if after is None:
        return '<div class="wb-help">No variant measured yet.</div>'
    float_rows = {row.layer: row for row in before.layers} if before is not None else {}
    io = {
        "variant": label,
        "model input": _arrow(
            ", ".join(before.input_dtypes) if before else "?", ", ".join(after.input_dtypes)
        ),
        "model output": _arrow(
            ", ".join(before.output_dtypes) if before else "?", ", ".join(after.output_dtypes)
        ),
        "file size": _arrow(
            f"{before.size_bytes / 1024:.1f} KB" if before else "?",
            f"{after.size_bytes / 1024:.1f} KB",
        ),
    }
    runs_on = _runs_on(after.runtime)
    layer_rows = []
    for row in after.layers:
        old = float_rows.get(row.layer)
        weights = row.weight_dtype or "–"
        if row.weight_granularity:
            weights += f" ({row.weight_granularity})"
        layer_rows.append(
            [
                row.layer,
                " ".join(row.ops),
                _arrow(old.weight_dtype if old else "?", weights) if row.weight_dtype else "–",
                _arrow(old.activation_dtype if old else "?", row.activation_dtype),
                _arrow(old.bytes if old else "?", row.bytes),
                runs_on.get(row.layer, "–"),
            ]
        )
    conversions = [
        [
            c.opcode,
            c.layer or "–",
            f"{c.from_dtype} → {c.to_dtype}",
            "unpacks a weight" if c.of_constant else "converts activations",
            c.tensor,
        ]
        for c in after.conversions
    ]
    activations_in_float = [
        row.layer for row in after.layers if row.activation_dtype in ("float32", "float16")
    ]
    note = (
        f"Layers computing in float: {', '.join(activations_in_float)}."
        if activations_in_float and len(activations_in_float) < len(after.layers)
        else ""
    )
    slow = [layer for layer, where in runs_on.items() if where.startswith("reference")]
    if slow:
        note += (
            f" {len(slow)} of {len(runs_on)} layers run on TFLite's reference kernels (one core, "
            "no XNNPACK): that is where the latency goes."
        )
    if after.runtime is not None:
        io["kernels"] = after.runtime.summary()
    parts = [
        html.key_value_table(io, "wb-quantized-io"),
        html.table(
            ["layer", "ops", "weights", "activations", "weight bytes", "runs on"],
            layer_rows,
            "wb-quantized-layers",
        ),
        f'<div class="wb-help">{note}</div>' if note else "",
        f"<b>{len(conversions)} QUANTIZE / DEQUANTIZE ops</b>"
        if conversions
        else "<b>No QUANTIZE / DEQUANTIZE ops</b>",
        html.table(["op", "layer", "dtype", "what", "tensor"], conversions, "wb-quantized-ops")
        if conversions
        else "",
    ]
    return "".join(parts)


def _runs_on(runtime: Any) -> dict[str, str]:
    """Layer -> "XNNPACK" or "reference: <why>" (a layer is as slow as its slowest op)."""
    found: dict[str, str] = {}
    for op in runtime.ops if runtime is not None else ():
        if op.layer is not None and not found.get(op.layer, "").startswith("reference"):
            found[op.layer] = "XNNPACK" if op.kernel == "xnnpack" else f"reference: {op.reason}"
    return found


class QuantizedView(View):
    """Tables for the current variant against the float model."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.tables = styled(w.HTML(), "wb-quantized-tables")
        self.widget = styled(
            w.VBox(
                [
                    heading(
                        "What got quantized",
                        "Each layer's weight and activation dtype in the float model → the "
                        "current variant, the QUANTIZE / DEQUANTIZE ops inserted, and the I/O.",
                    ),
                    self.tables,
                ]
            ),
            "wb-quantized",
        )
        state.observe(lambda _: self._show(), ["summary", "float_summary"])
        self._show()

    def _show(self) -> None:
        label = self.state.result.label if self.state.result is not None else ""
        self.tables.value = quantized_html(self.state.float_summary, self.state.summary, label)
