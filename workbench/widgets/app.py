"""The whole workbench on one page: pickers, status, controls, board and the detail views."""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from workbench.qtyping import QuantConfig
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
        self.controls.widget.layout = w.Layout(width="460px")
        self.board.widget.layout = w.Layout(flex="1 1 600px", min_width="600px")
        self.widget = styled(
            w.VBox(
                [
                    w.HTML(STYLE),
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
        self.controller.load(model, data, name=model if isinstance(model, str) else "model")

    @property
    def session(self) -> Any:
        return self.state.session

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the newest background job has finished; False on timeout."""
        return self.controller.wait(timeout)

    def close(self) -> None:
        self.controller.close()
        self.compression.close()
        self.search.close()
        self.widget.close()

    def __repr__(self) -> str:
        return f"Workbench({self.state.model_name!r}, {self.state.config.label!r})"
