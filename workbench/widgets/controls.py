"""Quantization controls: route, mode, granularity, I/O type, calibration, float layers.

The controls only write `state.config`; they follow it back when something else changes it
(the layer error view's "keep in float", a new model). Impossible combinations are not
offered (int4 only on the LiteRT route, integer I/O only for int8).
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from workbench.errors import WorkbenchError
from workbench.qtyping import Granularity, IOType, Mode, QuantConfig, Route
from workbench.widgets.figures import IDEAL_RMSE_PER_SCALE
from workbench.widgets.state import AppState
from workbench.widgets.tasks import TaskState, TaskStatus
from workbench.widgets.view import View, heading, styled

ROUTE_LABELS = (
    ("TFLite converter", Route.CONVERTER.value),
    ("LiteRT Quantizer", Route.LITERT.value),
)
CALIBRATION_CHOICES = (10, 25, 50, 100, 200, 500)
SUGGEST_ABOVE = 2 * IDEAL_RMSE_PER_SCALE  # RMSE/scale above twice ideal rounding


def mode_options(route: Route) -> list[str]:
    modes = [Mode.FLOAT32, Mode.DYNAMIC, Mode.FLOAT16, Mode.INT8, Mode.INT16X8]
    if route is Route.LITERT:
        modes.append(Mode.INT4)
    return [mode.value for mode in modes]


def suggested_layers(state: AppState) -> list[str]:
    """Layers whose per-layer error in the current result is well above ideal rounding."""
    result = state.result
    if result is None or result.layer_errors is None:
        return []
    names = set(state.layer_names)
    return [
        e.layer
        for e in sorted(result.layer_errors, key=lambda e: -e.rmse_per_scale)
        if e.rmse_per_scale > SUGGEST_ABOVE and e.layer in names
    ]


class ControlsView(View):
    """Toggle buttons and lists that write `state.config`."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self._syncing = False
        layout = {"width": "auto"}
        style = {"description_width": "110px"}
        toggles = {**style, "button_width": "auto"}
        self.route = styled(
            w.ToggleButtons(options=ROUTE_LABELS, description="Route", style=toggles), "wb-route"
        )
        self.mode = styled(
            w.ToggleButtons(
                options=mode_options(Route.CONVERTER), description="Mode", style=toggles
            ),
            "wb-mode",
        )
        self.granularity = styled(
            w.ToggleButtons(
                options=[g.value for g in Granularity], description="Granularity", style=toggles
            ),
            "wb-granularity",
        )
        self.io_type = styled(
            w.ToggleButtons(
                options=[t.value for t in IOType], description="Model I/O", style=toggles
            ),
            "wb-io-type",
        )
        self.samples = styled(
            w.Dropdown(
                options=CALIBRATION_CHOICES, description="Calibration", style=style, layout=layout
            ),
            "wb-calibration",
        )
        self.keep_float = styled(
            w.SelectMultiple(
                options=[],
                description="Keep in float",
                rows=6,
                style=style,
                layout={"width": "420px"},
            ),
            "wb-keep-float-select",
        )
        self.suggest = styled(
            w.Button(description="Keep suggested layers", icon="magic", layout=layout),
            "wb-suggest",
        )
        self.clear = styled(w.Button(description="Quantize all", layout=layout), "wb-clear-float")
        self.suggestion = styled(w.HTML(), "wb-suggestion")
        controls = (
            self.route,
            self.mode,
            self.granularity,
            self.io_type,
            self.samples,
            self.keep_float,
        )
        self.widget = styled(
            w.VBox(
                [
                    heading(
                        "Quantization", "Every change converts and evaluates in the background."
                    ),
                    *controls,
                    w.HBox([self.suggest, self.clear]),
                    self.suggestion,
                ]
            ),
            "wb-controls",
        )
        for control in controls:
            control.observe(self._on_control, "value")
        self.suggest.on_click(lambda _: self._keep(suggested_layers(self.state)))
        self.clear.on_click(lambda _: self._keep([]))
        state.observe(lambda _: self._sync(), ["config", "session"])
        state.observe(lambda _: self._show_suggestions(), ["result", "session"])
        self._sync()
        self._show_suggestions()

    def config_from_controls(self) -> QuantConfig:
        mode = Mode(self.mode.value)
        return QuantConfig(
            route=Route(self.route.value),
            mode=mode,
            granularity=Granularity(self.granularity.value),
            io_type=IOType(self.io_type.value) if mode is Mode.INT8 else IOType.FLOAT32,
            calibration_samples=self.samples.value,
            keep_float=frozenset(self.keep_float.value) if mode.quantizes_layers else (),
        )

    def _keep(self, layers: list[str]) -> None:
        self.state.config = self.state.config.replace(keep_float=sorted(layers))

    def _on_control(self, _change: dict[str, Any]) -> None:
        if self._syncing:
            return
        self._sync_options(Route(self.route.value), Mode(self.mode.value))
        try:
            self.state.config = self.config_from_controls()
        except WorkbenchError as error:
            self.state.status = TaskStatus(TaskState.FAILED, message=str(error))

    def _sync_options(self, route: Route, mode: Mode) -> None:
        """Offer only what this route and mode can do."""
        previous, self._syncing = self._syncing, True
        try:
            options = mode_options(route)
            if list(self.mode.options) != options:
                self.mode.options = options
            self.mode.value = mode.value if mode.value in options else Mode.INT8.value
            self.granularity.disabled = not Mode(self.mode.value).has_granularity
            self.io_type.disabled = Mode(self.mode.value) is not Mode.INT8
            self.samples.disabled = not Mode(self.mode.value).needs_calibration
        finally:
            self._syncing = previous

    def _sync(self) -> None:
        """Show `state.config` without writing it back."""
        config = self.state.config
        self._syncing = True
        try:
            self.route.value = config.route.value
            self._sync_options(config.route, config.mode)
            # A mode without granularity (or integer I/O) keeps the user's last choice on
            # screen, so that going back to int8 restores it.
            if config.mode.has_granularity:
                self.granularity.value = config.granularity.value
            if config.mode is Mode.INT8:
                self.io_type.value = config.io_type.value
            if (
                config.calibration_samples
                and config.calibration_samples not in self.samples.options
            ):
                self.samples.options = sorted({*self.samples.options, config.calibration_samples})
            if config.calibration_samples:
                self.samples.value = config.calibration_samples
            names = self.state.layer_names
            if list(self.keep_float.options) != names:
                self.keep_float.options = names
            self.keep_float.value = tuple(n for n in names if n in config.keep_float)
            self.keep_float.disabled = config.mode in (Mode.FLOAT32, Mode.FLOAT16)
        finally:
            self._syncing = False

    def _show_suggestions(self) -> None:
        layers = suggested_layers(self.state)
        self.suggest.disabled = not layers
        if layers:
            text = "Suggested from the per-layer error: " + ", ".join(layers[:5])
        elif self.state.result is not None and self.state.result.layer_errors:
            text = "No layer is far above ideal rounding error."
        else:
            text = "Suggestions appear once a quantized variant's per-layer error is measured."
        self.suggestion.value = f'<div class="wb-help">{text}</div>'
