"""Interactive widgets (ipywidgets 8 + plotly): the workbench dashboard and its parts.

Public API (everything else is private):

- ``Workbench(model=None, data=None)``: the whole dashboard; display it in a cell. Its parts
  display on their own too: ``app.controls``, ``app.board``, ``app.layer_errors``,
  ``app.quantized``, ``app.ranges``, ``app.explainer``, ``app.pickers``, ``app.status``.
  ``app.state`` holds the current ``QuantConfig`` (``app.state.config = ...`` converts it live),
  the measured ``VariantResult`` (``app.state.result``), the baseline and pinned variants;
  ``app.wait()`` blocks until the background work is done; ``app.session`` is the `Session`;
  ``app.state.selected_layer`` is the layer the range explorer shows (clicking a bar of its
  overview charts, plotly FigureWidgets, selects it, as its Layer menu does); the per-layer
  error view has its own choice, the layer to keep in float (``app.layer_errors.layer``,
  at first the worst one). Each plot has a ``.figure``: the plotly figure on screen.
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


_shown: list[Workbench] = []  # the app `show` displayed last


def show(model: Any = None, data: Any = None) -> Workbench:
    """Display the workbench for `model` and `data` and return it (keep it: ``app = show()``).

    Running the cell again replaces the app: the previous one's background work is cancelled.
    """
    from IPython.display import display

    while _shown:
        _shown.pop().close()
    app = Workbench(model, data)
    _shown.append(app)
    display(app)
    return app
