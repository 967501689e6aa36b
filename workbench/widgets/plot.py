"""Long-lived plot areas, each updated by handing it a freshly built figure.

`Plot` draws with the front end's plotly renderer (one message per update, no clicks).
`ClickPlot` is a plotly `FigureWidget`, used only where clicking matters. Its front end is
plotly's 5 MB anywidget bundle, which plotly inlines in every widget's state and anywidget
must load within 2 s; on a busy page with several figures that fails. Here the widget's
module is a small loader (`LOADER`): the first figure on a page asks the kernel for the
bundle once and every figure imports that copy, outside anywidget's 2 s; each figure then
asks for its current state before drawing, so updates sent while the page was still loading
(Voila fetches widget states before it can receive updates) are not lost.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as w
import plotly.graph_objects as go

PLOTLY_MIME = "application/vnd.plotly.v1+json"
CONFIG = {"displaylogo": False, "displayModeBar": False, "responsive": True}
SYNCED = ["_widget_data", "_widget_layout", "_last_layout_edit_id", "_last_trace_edit_id"]
LOADER = """\
function ask(model, type) {
  return new Promise((resolve) => {
    const answer = (message, buffers) => {
      if (message.type !== type) return;
      model.off("msg:custom", answer);
      resolve(buffers);
    };
    model.on("msg:custom", answer);
    model.send({ type });
  });
}

function plotly(model) {
  globalThis.__workbenchPlotly ??= ask(model, "bundle").then(async ([source]) => {
    const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
    try {
      return await import(url);
    } finally {
      URL.revokeObjectURL(url);
    }
  });
  return globalThis.__workbenchPlotly;
}

export default () => {
  let ready;
  return {
    initialize({ model }) {
      ready = plotly(model).then(async (bundle) => {
        const figure = bundle.default();
        figure.initialize({ model });
        await ask(model, "sync");
        return figure;
      });
    },
    async render(view) {
      return (await ready).render(view);
    },
  };
};
"""


class Plot:
    """`Plot(figure, css).widget` shows `figure`; `show(new_figure)` replaces it."""

    def __init__(self, figure: go.Figure, css: str) -> None:
        self.widget = w.Output(layout={"width": "100%", "min_height": "120px"})
        self.widget.add_class(css)
        self.widget.add_class("wb-plot")
        self.figure = go.Figure()
        self._shown: dict | None = None
        self.show(figure)

    def show(self, figure: go.Figure) -> None:
        record = figure.to_plotly_json()
        if record == self._shown:
            return
        self._shown, self.figure = record, figure
        bundle = {PLOTLY_MIME: {**record, "config": CONFIG}, "text/plain": "plotly figure"}
        self.widget.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)


class ClickFigure(go.FigureWidget):
    """plotly's FigureWidget with `LOADER` as its front-end module."""

    _esm = LOADER


class ClickPlot:
    """`ClickPlot(figure, css, on_click)`: a FigureWidget showing `figure`; a click on a bar
    or point of it calls `on_click(x)`; `show(new_figure)` updates it in one message."""

    def __init__(self, figure: go.Figure, css: str, on_click: Callable[[Any], None]) -> None:
        self.widget = ClickFigure()
        self.widget.add_class(css)
        self.widget.add_class("wb-plot")
        self.widget.on_msg(self._on_message)
        self._on_click = on_click
        self._lock = threading.Lock()  # show() runs on worker threads, requests on the kernel's
        self._shown: dict | None = None
        self.show(figure)

    @property
    def figure(self) -> go.FigureWidget:
        """The figure on screen (the FigureWidget itself)."""
        return self.widget

    def show(self, figure: go.Figure) -> None:
        record = figure.to_plotly_json()
        with self._lock:
            if record == self._shown:
                return
            self._shown = record
            widget = self.widget
            if [t.type for t in widget.data] != [t.type for t in figure.data]:
                widget.data = ()
                widget.add_traces(figure.data)
                for trace in widget.data:
                    trace.on_click(self._clicked)
            with widget.batch_update():  # one update message for the views on screen
                for trace, new in zip(widget.data, record["data"], strict=True):
                    trace.update({k: v for k, v in new.items() if k != "type"}, overwrite=True)
                layout = record["layout"]
                stale = {key: None for key in widget.layout.to_plotly_json() if key not in layout}
                widget.update_layout({**stale, **layout}, overwrite=True)

    def _clicked(self, _trace: Any, points: Any, _state: Any) -> None:
        if points.xs:
            self._on_click(points.xs[0])

    def _on_message(self, _widget: Any, content: dict, _buffers: list) -> None:
        """Answer the loader: the plotly bundle, or the current figure before it draws."""
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "bundle":
            self.widget.send({"type": "bundle"}, buffers=[_plotly_bundle()])
        elif kind == "sync":
            with self._lock:
                # plotly syncs the whole figure only when it is built, and later sends edits.
                self.widget._widget_data = copy.deepcopy(self.widget._data)
                self.widget._widget_layout = copy.deepcopy(self.widget._layout)
                self.widget.send_state(SYNCED)
            self.widget.send({"type": "sync"})


@functools.cache
def _plotly_bundle() -> bytes:
    """plotly's FigureWidget front end (the module it would inline in every widget)."""
    return str(go.FigureWidget._esm).encode()
