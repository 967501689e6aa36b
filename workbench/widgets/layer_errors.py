"""Per-layer error of the current variant, with one-click "keep in float"."""

from __future__ import annotations

from html import escape

import ipywidgets as w

from workbench.qtyping import Mode, VariantResult
from workbench.widgets import figures
from workbench.widgets.plot import ClickPlot
from workbench.widgets.state import AppState
from workbench.widgets.view import OfferedDropdown, View, heading, offer, styled


class LayerErrorView(View):
    """Bar chart of RMSE/scale per layer against the 1/sqrt(12) line; click or pick a layer
    (the worst one not yet in float to begin with), keep it in float."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self._chosen: str | None = None  # the layer the user picked to keep in float
        self.chart = ClickPlot(
            figures.empty("Per-layer error against float", "No variant measured yet."),
            "wb-layer-error-chart",
            self.select,
        )
        self.sort = styled(w.Checkbox(value=True, description="sort by error"), "wb-error-sort")
        self.layer = styled(
            OfferedDropdown(description="Layer", options=[], layout={"width": "420px"}),
            "wb-error-layer",
        )
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
        self.sort.observe(lambda _: self._draw(), "value")
        self.on_user_change(self.layer, self._on_layer)
        self.keep.on_click(lambda _: self._keep())
        state.observe(lambda _: self._show(), ["result", "config"])
        self._show()

    def select(self, layer: str) -> None:
        """Choose `layer` to keep in float, as the Layer menu does; a click on a bar calls this.
        The range explorer has its own selection (`state.selected_layer`)."""
        if layer in self.layer.options:
            self.layer.value = layer

    def _on_layer(self, change: dict) -> None:
        if change["new"]:
            self._chosen = change["new"]
            self._draw()

    def _keep(self) -> None:
        with self.state.lock:
            layer, config = self.layer.value, self.state.config
            if layer and layer not in config.keep_float:
                self.state.config = config.replace(keep_float=sorted({*config.keep_float, layer}))

    def _show(self) -> None:
        """New result: list its layers; keep the user's choice if it is there, else the
        worst layer not yet kept in float."""
        result = self.state.result
        errors = (result.layer_errors or ()) if result is not None else ()
        if result is None:
            self.note.value = '<div class="wb-help">No variant measured yet.</div>'
        elif not errors:
            self.note.value = f'<div class="wb-help">{_why_none(result)}</div>'
        else:
            self.note.value = f'<div class="wb-help">{escape(result.label)}</div>'
        unavailable = result.unavailable if result is not None else ()
        refused = [u for u in unavailable if u.measurement.startswith("layer")]
        if refused:
            items = "".join(f"<li>{escape(str(u))}</li>" for u in refused)
            self.note.value += f'<ul class="wb-help wb-error-unavailable">{items}</ul>'
        names = [e.layer for e in errors]
        keep = self.state.config.keep_float
        candidates = [e for e in errors if e.layer not in keep] or list(errors)
        worst = max(candidates, key=lambda e: e.rmse_per_scale).layer if candidates else None
        with self.showing():
            offer(self.layer, names)
            self.layer.value = self._chosen if self._chosen in names else worst
        self.keep.disabled = not names
        self._draw()

    def _draw(self) -> None:
        result = self.state.result
        errors = (result.layer_errors or ()) if result is not None else ()
        if not errors:
            message = "No variant measured yet." if result is None else _why_none(result)
            self.chart.show(figures.empty("Per-layer error against float", message))
            return
        self.chart.show(
            figures.layer_error_chart(
                errors,
                sort=self.sort.value,
                keep_float=sorted(self.state.config.keep_float),
                selected=self.layer.value,
            ),
        )


def _why_none(result: VariantResult) -> str:
    if result.config.mode in (Mode.FLOAT32, Mode.FLOAT16):
        return f"{escape(result.label)}: a float variant has no quantized layers to compare."
    if result.layer_errors is None:  # not measured (yet)
        return f"{escape(result.label)}: measuring the per-layer error…"
    return f"{escape(result.label)}: no quantized layer output to compare."
