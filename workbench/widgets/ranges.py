"""Range explorer: weight ranges per layer and per channel, activation ranges with clipping."""

from __future__ import annotations

from html import escape
from typing import Any

import ipywidgets as w
import plotly.graph_objects as go

from workbench.widgets import figures
from workbench.widgets.plot import ClickPlot, Plot
from workbench.widgets.state import AppState
from workbench.widgets.view import OfferedDropdown, View, heading, offer, styled

RANGE_CHOICES = (
    ("min / max (what the converter uses)", None),
    ("99.9th percentile", 99.9),
    ("99th percentile", 99.0),
)


def _percentile(stats: Any, q: float) -> tuple[float, float]:
    """The symmetric percentile range (100-q, q) from the recorded percentiles."""
    table = {float(k): float(v) for k, v in stats.percentiles.items()}
    lo = table.get(round(100.0 - q, 4), stats.min)
    return lo, table.get(q, stats.max)


MEASURING = "Measuring ranges…"
TITLES = {
    "weights": "Weight range per layer",
    "channels": "Per-channel ranges",
    "activations": "Activation range per layer",
    "histogram": "Activation histogram",
}


def _empty(title: str, message: str = MEASURING) -> go.Figure:
    return figures.empty(title, message)


class RangeView(View):
    """Overview bars per layer (click one to select it) and detail plots for the selected one."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.weights = ClickPlot(_empty(TITLES["weights"]), "wb-weight-ranges", self.select)
        self.channels = Plot(_empty(TITLES["channels"]), "wb-channel-strip")
        self.activations = ClickPlot(
            _empty(TITLES["activations"]), "wb-activation-ranges", self.select
        )
        self.histogram = Plot(_empty(TITLES["histogram"]), "wb-activation-histogram")
        self.layer = styled(
            OfferedDropdown(description="Layer", options=[], layout={"width": "380px"}),
            "wb-range-layer",
        )
        self.range_choice = styled(
            w.Dropdown(options=RANGE_CHOICES, description="Range", layout={"width": "380px"}),
            "wb-range-choice",
        )
        self.note = styled(w.HTML(), "wb-range-note")
        self.widget = styled(
            w.VBox(
                [
                    heading(
                        "Weight ranges",
                        "Min/max of each layer's kernel; below, the selected layer's channels on "
                        "the shared per-tensor int8 grid (how many levels each channel uses).",
                    ),
                    self.note,
                    self.weights.widget,
                    self.layer,
                    self.channels.widget,
                    heading(
                        "Activation ranges",
                        "Min/max of each layer's output on the calibration data; below, the "
                        "selected layer's histogram with the chosen range and what it clips.",
                    ),
                    self.activations.widget,
                    self.range_choice,
                    self.histogram.widget,
                ]
            ),
            "wb-ranges",
        )
        self.on_user_change(self.layer, self._on_layer)
        self.range_choice.observe(lambda _: self._show_detail(), "value")
        state.observe(lambda _: self._show(), "inspection")
        state.observe(lambda _: self._show_detail(), "selected_layer")
        self._show()

    def select(self, layer: str) -> None:
        """Select `layer` as the Layer dropdown does; a click on an overview bar calls this."""
        if layer in self.layer.options:
            self.state.selected_layer = layer

    def _on_layer(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self.state.selected_layer = change["new"]

    def _show(self) -> None:
        inspection = self.state.inspection
        if inspection is None:  # a new model: nothing of the previous one stays on screen
            self.note.value = f'<div class="wb-help">{MEASURING}</div>'
            with self.showing():
                offer(self.layer, [])
            for plot, key in self._plots():
                plot.show(_empty(TITLES[key]))
            return
        unknown = [item.layer for item in inspection.weights if _not_predicted(item)]
        message = inspection.message
        if unknown:  # never show a kernel the converter changes in a way not modelled
            message += f" Weights not predicted (a fold not modelled): {', '.join(unknown)}."
        self.note.value = f'<div class="wb-help">{escape(message)}</div>'
        names = [item.layer for item in inspection.weights]
        names += [item.layer for item in inspection.activations if item.layer not in names]
        with self.showing():
            offer(self.layer, names)
        self._show_detail()

    def _plots(self) -> tuple[tuple[Any, str], ...]:
        return (
            (self.weights, "weights"),
            (self.channels, "channels"),
            (self.activations, "activations"),
            (self.histogram, "histogram"),
        )

    def _show_detail(self) -> None:
        inspection = self.state.inspection
        if inspection is None:
            return
        from workbench.affine import params_from_range

        selected = self.state.selected_layer
        if selected not in self.layer.options:
            selected = self.layer.options[0] if self.layer.options else ""
        with self.showing():
            self.layer.value = selected or None
        predicted = [item for item in inspection.weights if not _not_predicted(item)]
        for plot, items, title in (
            (self.weights, predicted, TITLES["weights"]),
            (self.activations, inspection.activations, TITLES["activations"]),
        ):
            if not items:
                plot.show(_empty(title, inspection.message or "nothing to show"))
                continue
            stats = [getattr(item, "per_tensor", item) for item in items]
            plot.show(
                figures.range_bars(
                    [item.layer for item in items],
                    [s.min for s in stats],
                    [s.max for s in stats],
                    selected=selected,
                    title=title,
                )
            )
        weights = {item.layer: item for item in predicted}
        activations = {item.layer: item for item in inspection.activations}
        stat = weights.get(selected) or next(iter(weights.values()), None)
        if stat is not None:
            tensor = stat.per_tensor
            params = params_from_range(
                tensor.min, tensor.max, dtype="int8", symmetric=True, narrow_range=True
            )
            channels = stat.per_channel or [tensor]
            self.channels.show(
                figures.channel_strip(
                    stat.layer,
                    [c.min for c in channels],
                    [c.max for c in channels],
                    float(params.scale.reshape(-1)[0]),
                    int(params.zero_point.reshape(-1)[0]),
                    levels=params.qmax - params.qmin,
                )
            )
        else:
            self.channels.show(_empty(TITLES["channels"], inspection.message or "no weights"))
        act = activations.get(selected) or next(iter(activations.values()), None)
        if act is not None:
            q = self.range_choice.value
            lo, hi = (act.min, act.max) if q is None else _percentile(act, q)
            histogram = act.histogram
            self.histogram.show(
                figures.activation_histogram(act.layer, histogram.counts, histogram.edges, lo, hi)
            )
        else:
            self.histogram.show(_empty(TITLES["histogram"], inspection.message or "no data"))


def _not_predicted(item: Any) -> bool:
    return getattr(item, "not_predicted", None) is not None
