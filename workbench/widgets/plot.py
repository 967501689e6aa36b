"""A long-lived plot area: a plotly figure drawn by the front end's plotly renderer.

Each update replaces the figure inside an `ipywidgets.Output` with one message. plotly's
`FigureWidget` is not used: every instance ships its 5 MB front-end bundle in its widget state
and anywidget gives a model 2 s to load it, which a page with several figures and a busy kernel
misses (the figures then never draw).
"""

from __future__ import annotations

import ipywidgets as w
import plotly.graph_objects as go

PLOTLY_MIME = "application/vnd.plotly.v1+json"
CONFIG = {"displaylogo": False, "responsive": True}


class Plot:
    """`Plot(figure, css).widget` shows `figure`; `show(new_figure)` replaces it."""

    def __init__(self, figure: go.Figure, css: str) -> None:
        self.widget = w.Output(layout={"width": "100%"})
        self.widget.add_class(css)
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
