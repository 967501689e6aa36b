"""The small base every view shares: one container widget, displayable on its own."""

from __future__ import annotations

from typing import Any

import ipywidgets as w


class View:
    """A view exposes `widget` (an ipywidgets container) and displays as that widget."""

    widget: w.Widget

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def heading(text: str, help_text: str = "") -> w.HTML:
    helper = f'<div class="wb-help">{help_text}</div>' if help_text else ""
    return w.HTML(f"<h3>{text}</h3>{helper}")


def styled(widget: w.Widget, *classes: str) -> w.Widget:
    for css in classes:
        widget.add_class(css)
    return widget
