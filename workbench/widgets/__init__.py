"""Interactive widgets (ipywidgets 8 + plotly): the workbench dashboard and its parts.

Public API (everything else is private):

- ``Workbench(model=None, data=None)``: the whole dashboard; display it in a cell. Its parts
  display on their own too: ``app.controls``, ``app.board``, ``app.layer_errors``,
  ``app.quantized``, ``app.ranges``, ``app.explainer``, ``app.pickers``, ``app.status``.
  ``app.state`` holds the current ``QuantConfig`` (``app.state.config = ...`` converts it live),
  the measured ``VariantResult`` (``app.state.result``), the baseline and pinned variants;
  ``app.wait()`` blocks until the background work is done; ``app.session`` is the `Session`;
  ``app.state.selected_layer`` is the layer the range and error views show (clicking a bar of
  their overview charts, plotly FigureWidgets, selects it, as their Layer menus do). Each plot
  has a ``.figure``: the plotly figure on screen.
- ``show(model=None, data=None)``: display a ``Workbench`` and return it.
- ``AffineExplainer(rmin=-3.0, rmax=6.0, dtype="int8")``: the affine mapping explainer, which
  needs no model.

Importing this package loads ipywidgets and plotly but not TensorFlow.
"""

from __future__ import annotations

from typing import Any

from workbench.widgets.app import Workbench
from workbench.widgets.explainer import AffineExplainer

__all__ = ["AffineExplainer", "Workbench", "show"]


def show(model: Any = None, data: Any = None) -> Workbench:
    """Display the workbench for `model` and `data` and return it (keep it: ``app = show()``)."""
    from IPython.display import display

    app = Workbench(model, data)
    display(app)
    return app
