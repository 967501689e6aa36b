"""The small base every view shares: one container widget, displayable on its own, and the
guard between showing the state and the user's changes of the same widgets."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import ipywidgets as w
import traitlets


class View:
    """A view exposes `widget` (an ipywidgets container) and displays as that widget.

    A view whose widgets both show the state and take the user's changes writes them inside
    `showing()` and observes them with `on_user_change`. Deliveries show the state on the
    workers' threads while the kernel's thread handles clicks; both hold `state.lock`.
    """

    widget: w.Widget
    state: Any  # widgets.state.AppState, for views that show it
    _showing = False

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    @contextmanager
    def showing(self) -> Iterator[None]:
        """Write widgets to show the state: the changes made inside are not the user's."""
        with self.state.lock:
            previous, self._showing = self._showing, True
            try:
                yield
            finally:
                self._showing = previous

    def on_user_change(self, widget: w.Widget, handler: Callable[[dict], Any]) -> None:
        """Call `handler(change)` for the user's changes of `widget`'s value, under the state's
        lock. A delivery that showed an older state in between (its thread held the lock while
        the click waited) gets the user's value back: the click is newer."""

        def handle(change: dict) -> None:
            with self.state.lock:
                if self._showing:
                    return
                if widget.value != change["new"]:
                    try:
                        with self.showing():
                            widget.value = change["new"]
                    except traitlets.TraitError:  # no longer offered: nothing to change
                        return
                handler(change)

        widget.observe(handle, "value")


class _Offered:
    """A selection whose options change. A click on an option the kernel no longer offers
    (the browser had not drawn the new options yet) is answered with the kernel's selection;
    ipywidgets would only log the error and leave the stale button pressed on screen."""

    def set_state(self, sync_data: dict) -> None:
        try:
            super().set_state(sync_data)  # type: ignore[misc]
        except traitlets.TraitError:
            self.send_state([key for key in sync_data if key in self.keys])  # type: ignore[attr-defined]


class OfferedToggleButtons(_Offered, w.ToggleButtons):
    """Toggle buttons whose options change (see `offer`)."""


class OfferedDropdown(_Offered, w.Dropdown):
    """A dropdown whose options change (see `offer`)."""


class OfferedSelectMultiple(_Offered, w.SelectMultiple):
    """A multiple selection whose options change."""


def offer(widget: w.Widget, options: Sequence[Any]) -> None:
    """Give a selection widget other options. ipywidgets selects the first option on every
    change of options and sends that to the browser, where it replaces a click still on its
    way to the kernel; here a value still offered stays selected and nothing else is sent."""
    if tuple(widget.options) == tuple(options):
        return
    pairs = [option if isinstance(option, tuple) else (str(option), option) for option in options]
    values = [value for _, value in pairs]
    if widget.value not in values:  # the selection has to move: the caller chooses where
        widget.options = options
        return
    widget._initializing_traits_ = True  # ipywidgets' own flag: no reset while it is set
    try:
        widget.options = options
    finally:
        widget._initializing_traits_ = False
    index = values.index(widget.value)
    widget.index = index  # sent only if its position moved
    widget.label = pairs[index][0]  # (kept by the kernel only; the browser has the labels)


def heading(text: str, help_text: str = "") -> w.HTML:
    helper = f'<div class="wb-help">{help_text}</div>' if help_text else ""
    return w.HTML(f"<h3>{text}</h3>{helper}")


def styled(widget: w.Widget, *classes: str) -> w.Widget:
    for css in classes:
        widget.add_class(css)
    return widget
