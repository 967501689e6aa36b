"""The whole workbench on one page: pickers, status, controls, board and the detail views."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ipywidgets as w

from workbench.qtyping import QuantConfig
from workbench.widgets.a11y import Accessibility
from workbench.widgets.board import BoardView, StatusView
from workbench.widgets.compression import CompressionView
from workbench.widgets.controls import ControlsView
from workbench.widgets.explainer import AffineExplainer
from workbench.widgets.html import STYLE
from workbench.widgets.layer_errors import LayerErrorView
from workbench.widgets.live import LiveController
from workbench.widgets.pickers import PickerView
from workbench.widgets.quantized import QuantizedView
from workbench.widgets.ranges import RangeView
from workbench.widgets.search import SearchView
from workbench.widgets.state import AppState
from workbench.widgets.view import View, styled

CHART_NAMES = {
    "wb-board-chart": "Comparison chart: size, accuracy, agreement and latency of each variant "
    "on the board (the same numbers are in the table above)",
    "wb-layer-error-chart": "Per-layer error chart: RMSE over scale of each layer; the Layer "
    "menu below lists the same layers",
    "wb-weight-ranges": "Weight range of each layer",
    "wb-channel-strip": "Per-channel weight ranges of the selected layer",
    "wb-activation-ranges": "Activation range of each layer",
    "wb-activation-histogram": "Activation histogram of the selected layer",
    "wb-affine-chart": "Affine mapping: real value to integer, and the error it leaves",
}


class Workbench(View):
    """`Workbench(model=None, data=None)`: the dashboard; display it, or use its parts.

    `model` is anything `load_model` takes (default: the demo `shapes_mobilenet`), or a
    `Session`; `data` anything `load_dataset` takes (default: the model's own dataset).
    Loading, converting and evaluating run in one background worker; `wait()` blocks until
    the newest job has finished (for scripts and tests).
    """

    def __init__(
        self,
        model: Any = None,
        data: Any = None,
        *,
        config: QuantConfig | None = None,
        layer_errors: bool = True,
    ) -> None:
        from workbench.models import DEFAULT_MODEL

        self.state = AppState(config=config or QuantConfig())
        self.controller = LiveController(self.state, layer_errors=layer_errors)
        self.status = StatusView(self.state, cancel=self.controller.cancel)
        self.pickers = PickerView(
            self.state, lambda m, d, name: self.controller.load(m, d, name=name)
        )
        self.controls = ControlsView(self.state)
        self.board = BoardView(self.state)
        self.layer_errors = LayerErrorView(self.state)
        self.quantized = QuantizedView(self.state)
        self.ranges = RangeView(self.state)
        self.explainer = AffineExplainer()
        self.compression = CompressionView(self.state)
        self.search = SearchView(self.state)
        self.controls.widget.layout = w.Layout(width="460px", max_width="100%")
        self.board.widget.layout = w.Layout(flex="1 1 520px", min_width="min(520px, 100%)")
        self.accessibility = Accessibility(names=CHART_NAMES, layout={"display": "none"})
        self.widget = styled(
            w.VBox(
                [
                    w.HTML(STYLE),
                    self.accessibility,
                    self.pickers.widget,
                    self.status.widget,
                    w.HBox(
                        [self.controls.widget, self.board.widget],
                        layout={"align_items": "flex-start", "flex_flow": "row wrap"},
                    ),
                    self.search.widget,
                    self.layer_errors.widget,
                    self.quantized.widget,
                    self.ranges.widget,
                    self.explainer.widget,
                    self.compression.widget,
                ]
            ),
            "wb-app",
        )
        model = DEFAULT_MODEL if model is None else model
        name = Path(model).name if isinstance(model, str | Path) else "model"  # a file by name
        self.controller.load(model, data, name=name)

    @property
    def session(self) -> Any:
        return self.state.session

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the newest background job has finished; False on timeout."""
        return self.controller.wait(timeout)

    def close(self, timeout: float = 0.0) -> None:
        """Stop the background work (waiting at most `timeout` s for the threads to end),
        remove uploaded files and close the widgets."""
        self.controller.close(timeout)
        self.compression.close(timeout)
        self.search.close(timeout)
        self.pickers.close()
        self.widget.close()

    def __repr__(self) -> str:
        return f"Workbench({self.state.model_name!r}, {self.state.config.label!r})"
