"""Range explorer: weight ranges per layer and per channel, activation ranges with clipping."""

from __future__ import annotations

from typing import Any

import ipywidgets as w
import plotly.graph_objects as go

from workbench.widgets import figures
from workbench.widgets.state import AppState
from workbench.widgets.view import View, heading, styled

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


def _empty(title: str) -> go.FigureWidget:
    return figures.figure_widget(figures.range_bars([], [], [], title=title))


class RangeView(View):
    """Overview bars (click one to select a layer) and a detail plot for the selected layer."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self.weights = styled(_empty("Weight range per layer"), "wb-weight-ranges")
        self.channels = styled(_empty("Per-channel ranges"), "wb-channel-strip")
        self.activations = styled(_empty("Activation range per layer"), "wb-activation-ranges")
        self.histogram = styled(_empty("Activation histogram"), "wb-activation-histogram")
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
                        "Min/max of each layer's kernel (click a bar to select the layer); below, "
                        "the selected layer's channels on the shared per-tensor int8 grid.",
                    ),
                    self.note,
                    self.weights,
                    self.channels,
                    heading(
                        "Activation ranges",
                        "Min/max of each layer's output on the calibration data; below, the "
                        "selected layer's histogram with the chosen range and what it clips.",
                    ),
                    self.activations,
                    self.range_choice,
                    self.histogram,
                ]
            ),
            "wb-ranges",
        )
        self._bound: set[int] = set()
        self.range_choice.observe(lambda _: self._show_detail(), "value")
        state.observe(lambda _: self._show(), "inspection")
        state.observe(lambda _: self._show_detail(), "selected_layer")
        self._show()

    def _on_click(self, trace, points, _selector) -> None:  # noqa: ANN001 - plotly callback
        if points.point_inds:
            self.state.selected_layer = str(trace.x[points.point_inds[0]])

    def _bind(self, figure: go.FigureWidget) -> None:
        if figure.data and id(figure.data[0]) not in self._bound:
            figure.data[0].on_click(self._on_click)
            self._bound.add(id(figure.data[0]))

    def _show(self) -> None:
        inspection = self.state.inspection
        if inspection is None:
            self.note.value = '<div class="wb-help">Measuring ranges…</div>'
            return
        self.note.value = f'<div class="wb-help">{inspection.message}</div>'
        selected = self.state.selected_layer
        for figure, items, title in (
            (self.weights, inspection.weights, "Weight range per layer"),
            (self.activations, inspection.activations, "Activation range per layer"),
        ):
            names = [item.layer for item in items]
            stats = [item.per_tensor if hasattr(item, "per_tensor") else item for item in items]
            figures.update_figure(
                figure,
                figures.range_bars(
                    names,
                    [s.min for s in stats],
                    [s.max for s in stats],
                    selected=selected,
                    title=title,
                ),
            )
            self._bind(figure)
        self._show_detail()

    def _show_detail(self) -> None:
        inspection = self.state.inspection
        if inspection is None:
            return
        from workbench.affine import params_from_range

        selected = self.state.selected_layer
        weights = {item.layer: item for item in inspection.weights}
        activations = {item.layer: item for item in inspection.activations}
        stat = weights.get(selected) or next(iter(weights.values()), None)
        if stat is not None:
            tensor = stat.per_tensor
            params = params_from_range(
                tensor.min, tensor.max, dtype="int8", symmetric=True, narrow_range=True
            )
            channels = stat.per_channel or [tensor]
            figures.update_figure(
                self.channels,
                figures.channel_strip(
                    stat.layer,
                    [c.min for c in channels],
                    [c.max for c in channels],
                    float(params.scale.reshape(-1)[0]),
                    int(params.zero_point.reshape(-1)[0]),
                    levels=params.qmax - params.qmin,
                ),
            )
        act = activations.get(selected) or next(iter(activations.values()), None)
        if act is not None:
            q = self.range_choice.value
            lo, hi = (act.min, act.max) if q is None else _percentile(act, q)
            histogram = act.histogram
            figures.update_figure(
                self.histogram,
                figures.activation_histogram(act.layer, histogram.counts, histogram.edges, lo, hi),
            )
        for figure, items in ((self.weights, weights), (self.activations, activations)):
            if figure.data and items:
                colors = [
                    figures.ORANGE if name == selected else figures.BLUE
                    for name in figure.data[0].x
                ]
                figure.data[0].marker.color = colors
