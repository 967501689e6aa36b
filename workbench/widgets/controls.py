"""Quantization controls: route, mode, granularity, I/O type, calibration, float layers.

The controls only write `state.config`; they follow it back when something else changes it
(the layer error view's "keep in float", a new model). Combinations that cannot work are not
offered (int4 only on the LiteRT route, integer I/O only for int8, int16x8 on the TFLite
converter only per-channel for a model with depthwise layers), and a note under the controls
says why.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from workbench.errors import WorkbenchError
from workbench.qtyping import Granularity, IOType, Mode, QuantConfig, Route
from workbench.widgets.figures import IDEAL_RMSE_PER_SCALE
from workbench.widgets.state import AppState
from workbench.widgets.tasks import TaskState, TaskStatus
from workbench.widgets.view import (
    OfferedDropdown,
    OfferedSelectMultiple,
    OfferedToggleButtons,
    View,
    heading,
    offer,
    styled,
)

ROUTE_LABELS = (
    ("TFLite converter", Route.CONVERTER.value),
    ("LiteRT Quantizer", Route.LITERT.value),
)
CALIBRATION_CHOICES = (10, 25, 50, 100, 200, 500)
SUGGEST_ABOVE = 2 * IDEAL_RMSE_PER_SCALE  # RMSE/scale above twice ideal rounding


DEPTHWISE_INT16X8 = (
    "int16x8 on the TFLite converter is per-channel only for this model: the converter "
    "cannot quantize its depthwise layers per-tensor in int16x8 (the LiteRT Quantizer can)."
)


def has_depthwise(inspection: Any) -> bool:
    """Whether the inspected model has a depthwise convolution (Keras layer or TFLite op)."""
    layers = inspection.layers if inspection is not None else ()
    return any("depthwise" in row.type.lower() for row in layers)


def fixed_granularity(route: Route, mode: Mode, depthwise: bool) -> tuple[Granularity, str] | None:
    """The only granularity `route` can do in `mode` for a model and why, when it has no
    choice (the converter's int16x8 fails on every per-tensor depthwise kernel)."""
    if route is Route.CONVERTER and mode is Mode.INT16X8 and depthwise:
        return Granularity.PER_CHANNEL, DEPTHWISE_INT16X8
    return None


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
        self._granularity = state.config.granularity  # the user's choice, kept when not used
        layout = {"width": "auto"}
        style = {"description_width": "110px"}
        toggles = {**style, "button_width": "auto"}
        self.route = styled(
            w.ToggleButtons(options=ROUTE_LABELS, description="Route", style=toggles), "wb-route"
        )
        self.mode = styled(
            OfferedToggleButtons(
                options=mode_options(Route.CONVERTER), description="Mode", style=toggles
            ),
            "wb-mode",
        )
        self.granularity = styled(
            w.ToggleButtons(
                options=[g.value for g in Granularity],
                description="Granularity",
                tooltips=["one scale per output channel", "one scale per tensor"],
                style=toggles,
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
            OfferedDropdown(
                options=CALIBRATION_CHOICES, description="Calibration", style=style, layout=layout
            ),
            "wb-calibration",
        )
        self.keep_float = styled(
            OfferedSelectMultiple(
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
        self.note = styled(w.HTML(), "wb-controls-note")
        controls = (
            self.route,
            self.mode,
            self.granularity,
            self.io_type,
            self.samples,
            self.keep_float,
        )
        shown = (*controls[:3], self.note, *controls[3:])
        self.widget = styled(
            w.VBox(
                [
                    heading(
                        "Quantization", "Every change converts and evaluates in the background."
                    ),
                    *shown,
                    w.HBox([self.suggest, self.clear]),
                    self.suggestion,
                ]
            ),
            "wb-controls",
        )
        for control in controls:
            self.on_user_change(control, self._on_control)
        self.suggest.on_click(
            lambda _: self._keep([*self.state.config.keep_float, *suggested_layers(self.state)])
        )
        self.clear.on_click(lambda _: self._keep([]))
        state.observe(lambda _: self._sync(), ["config", "session", "inspection"])
        state.observe(lambda _: self._show_suggestions(), ["result", "session"])
        self._sync()
        self._show_suggestions()

    def config_from_controls(self) -> QuantConfig:
        route, mode = Route(self.route.value), Mode(self.mode.value)
        fixed = fixed_granularity(route, mode, has_depthwise(self.state.inspection))
        return QuantConfig(
            route=route,
            mode=mode,
            granularity=fixed[0] if fixed else self._granularity,
            io_type=IOType(self.io_type.value) if mode is Mode.INT8 else IOType.FLOAT32,
            calibration_samples=self.samples.value,
            keep_float=frozenset(self.keep_float.value) if mode.quantizes_layers else (),
        )

    def _keep(self, layers: list[str]) -> None:
        with self.state.lock:
            self.state.config = self.state.config.replace(keep_float=sorted(layers))

    def _on_control(self, change: dict[str, Any]) -> None:
        if change["owner"] is self.granularity:
            self._granularity = Granularity(change["new"])
        self._sync_options(Route(self.route.value), Mode(self.mode.value))
        try:
            self.state.config = self.config_from_controls()
        except WorkbenchError as error:
            self.state.status = TaskStatus(TaskState.FAILED, message=str(error))

    def _sync_options(self, route: Route, mode: Mode) -> None:
        """Offer only what this route and mode can do."""
        with self.showing():
            options = mode_options(route)
            offer(self.mode, options)
            self.mode.value = mode.value if mode.value in options else Mode.INT8.value
            mode = Mode(self.mode.value)
            fixed = fixed_granularity(route, mode, has_depthwise(self.state.inspection))
            if mode.has_granularity:
                self.granularity.value = (fixed[0] if fixed else self._granularity).value
            self.granularity.disabled = not mode.has_granularity or fixed is not None
            self.note.value = f'<div class="wb-help">{fixed[1]}</div>' if fixed else ""
            self.io_type.disabled = Mode(self.mode.value) is not Mode.INT8
            self.samples.disabled = not Mode(self.mode.value).needs_calibration

    def _sync(self) -> None:
        """Show `state.config` without writing it back."""
        with self.showing():
            config = self.state.config
            self.route.value = config.route.value
            # A mode without granularity (or integer I/O), or with only one, keeps the user's
            # last choice, so that going back to int8 restores it.
            depthwise = has_depthwise(self.state.inspection)
            if config.mode.has_granularity and not fixed_granularity(
                config.route, config.mode, depthwise
            ):
                self._granularity = config.granularity
            self._sync_options(config.route, config.mode)
            if config.mode is Mode.INT8:
                self.io_type.value = config.io_type.value
            if config.calibration_samples:
                offer(self.samples, sorted({*self.samples.options, config.calibration_samples}))
                self.samples.value = config.calibration_samples
            names = self.state.layer_names
            if list(self.keep_float.options) != names:
                self.keep_float.options = names
            self.keep_float.value = tuple(n for n in names if n in config.keep_float)
            self.keep_float.disabled = config.mode in (Mode.FLOAT32, Mode.FLOAT16)

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
