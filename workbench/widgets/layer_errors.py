"""Per-layer error of the current variant, with one-click "keep in float"."""

from __future__ import annotations

from html import escape

import ipywidgets as w

from workbench.widgets import figures
from workbench.widgets.plot import ClickPlot
from workbench.widgets.state import AppState
from workbench.widgets.view import View, heading, styled


class LayerErrorView(View):
    """Bar chart of RMSE/scale per layer against the 1/sqrt(12) line; click or pick a layer,
    keep it in float."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self._syncing = False
        self.chart = ClickPlot(figures.layer_error_chart(()), "wb-layer-error-chart", self.select)
        self.sort = styled(w.Checkbox(value=True, description="sort by error"), "wb-error-sort")
        self.layer = styled(w.Dropdown(description="Layer", options=[]), "wb-error-layer")
        self.keep = styled(w.Button(description="Keep in float", icon="lock"), "wb-keep-float")
        self.note = styled(w.HTML(), "wb-error-note")
        self.widget = styled(
            w.VBox(
                [
                    heading(
                        "Per-layer error",
                        "RMSE of each quantized layer's output against float, in units of its "
                        "quantization scale. Ideal rounding sits at 1/√12 ≈ 0.29; layers far "
                        "above it are candidates to keep in float.",
                    ),
                    self.note,
                    self.chart.widget,
                    w.HBox([self.layer, self.keep, self.sort]),
                ]
            ),
            "wb-layer-errors",
        )
        self.sort.observe(lambda _: self._show(), "value")
        self.layer.observe(self._on_layer, "value")
        self.keep.on_click(lambda _: self._keep())
        state.observe(lambda _: self._show(), ["result", "selected_layer"])
        self._show()

    def select(self, layer: str) -> None:
        """Select `layer` as the Layer dropdown does; a click on a bar calls this."""
        if layer in self.layer.options:
            self.state.selected_layer = layer

    def _on_layer(self, change: dict) -> None:
        if change["new"] and not self._syncing:
            self.state.selected_layer = change["new"]

    def _keep(self) -> None:
        layer = self.layer.value
        config = self.state.config
        if layer and layer not in config.keep_float:
            self.state.config = config.replace(keep_float=sorted({*config.keep_float, layer}))

    def _show(self) -> None:
        result = self.state.result
        errors = (result.layer_errors or ()) if result is not None else ()
        if result is None:
            self.note.value = '<div class="wb-help">No variant measured yet.</div>'
        elif not errors:
            self.note.value = (
                f'<div class="wb-help">{result.label}: no per-layer error '
                "(float variants, or still measuring).</div>"
            )
        else:
            self.note.value = f'<div class="wb-help">{result.label}</div>'
        unavailable = result.unavailable if result is not None else ()
        refused = [u for u in unavailable if u.measurement.startswith("layer")]
        if refused:
            items = "".join(f"<li>{escape(str(u))}</li>" for u in refused)
            self.note.value += f'<ul class="wb-help wb-error-unavailable">{items}</ul>'
        self.chart.show(
            figures.layer_error_chart(
                errors, sort=self.sort.value, keep_float=sorted(self.state.config.keep_float)
            ),
        )
        names = [e.layer for e in errors]
        if list(self.layer.options) != names:
            self._syncing = True
            try:
                self.layer.options = names
            finally:
                self._syncing = False
        selected = self.state.selected_layer
        self._syncing = True
        try:
            self.layer.value = selected if selected in names else (names[0] if names else None)
        finally:
            self._syncing = False
        self.keep.disabled = not names
