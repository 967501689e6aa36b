"""The search panel, headless: start a real search on digits_cnn, wait on the worker, check
the live scatter, the chosen marker, Stop, and that a click puts the variant on the board."""

from __future__ import annotations

import pytest

from workbench.qtyping import QuantConfig
from workbench.widgets.tasks import TaskState

TIMEOUT = 300


@pytest.fixture(scope="module")
def panel(digits_session):
    from workbench.widgets.search import SearchView
    from workbench.widgets.state import AppState

    state = AppState(config=QuantConfig(), session=digits_session)
    view = SearchView(state)
    yield view
    view.close()


def _points(view) -> dict[str, list]:
    return {trace.name: list(trace.x) for trace in view.chart.figure.data}


def test_search_draws_every_trial_and_marks_the_chosen(panel):
    panel.max_drop.value, panel.budget.value = 2.0, 5
    assert panel.stop.disabled and not panel.start.disabled
    drawn = []
    panel.chart.widget.observe(lambda _: drawn.append(1), "_data")
    panel.start.click()
    assert panel.start.disabled and not panel.stop.disabled  # Search again would restart it
    assert "searching" in panel.status.value  # at once, before the first trial
    assert panel.wait(TIMEOUT) and panel.worker.status.state is TaskState.DONE
    assert panel.stop.disabled and not panel.start.disabled
    result = panel.result
    assert result is not None and result.validations <= 5
    points = _points(panel)
    assert len(points["within the drop"]) + len(points["over it"]) == len(result.validated)
    chosen = result.chosen_trial
    assert points["chosen"] == [pytest.approx(chosen.size_bytes / 1024)]
    assert str(result.test.drop) in panel.status.value and result.status in panel.status.value


def _searched(panel):
    """The panel after a finished search (run here when this test runs alone)."""
    if panel.result is None:
        panel.max_drop.value, panel.budget.value = 2.0, 5
        panel.start.click()
        assert panel.wait(TIMEOUT)
    return panel


def test_click_on_a_point_puts_that_variant_on_the_board(panel):
    _searched(panel)
    trial = max(panel.result.validated, key=lambda t: t.size_bytes)  # float32, not the chosen
    trace = next(t for t in panel.chart.figure.data if t.name == "within the drop")
    index = list(trace.x).index(pytest.approx(trial.size_bytes / 1024))
    trace_index = list(panel.chart.figure.data).index(trace)
    panel.chart.figure._js2py_pointsCallback = {
        "event_type": "plotly_click",
        "points": {
            "xs": [trace.x[index]],
            "ys": [trace.y[index]],
            "point_indexes": [index],
            "trace_indexes": [trace_index],
        },
        "device_state": {"alt": False, "ctrl": False, "meta": False, "shift": False},
        "selector": None,
    }
    assert panel.state.config == trial.config


def test_stop_ends_the_search_and_keeps_the_best_so_far(panel):
    panel.max_drop.value, panel.budget.value = 1.5, 20  # new configs: not all cached

    def stop_after_first(change):
        if change["new"] and "trial  1" in change["new"]:
            panel.stop.click()

    panel.status.observe(stop_after_first, "value")
    panel.start.click()
    assert not any(len(trace.x) for trace in panel.chart.figure.data)  # the last search's
    assert panel.wait(TIMEOUT)
    panel.status.unobserve(stop_after_first, "value")
    result = panel.result
    assert result.status == "cancelled" and len(result.trials) == 2
    assert result.chosen is not None and "cancelled" in panel.status.value


def test_a_new_model_clears_the_panel(panel):
    from workbench.widgets.search import SearchView
    from workbench.widgets.state import AppState

    state = AppState(config=QuantConfig(), session=panel.state.session)
    view = SearchView(state)
    view._draw(_searched(panel).result.trials, panel.config(), None, "a line")
    assert any(len(trace.x) for trace in view.chart.figure.data)
    state.session = None
    assert not any(len(trace.x) for trace in view.chart.figure.data)
    assert view.result is None and view.status.value == ""
    view.close()


def test_a_new_model_during_a_search_never_draws_the_old_models_result(digits_session):
    from workbench.widgets.search import SearchView
    from workbench.widgets.state import AppState

    state = AppState(config=QuantConfig(), session=digits_session)
    view = SearchView(state)
    view.max_drop.value, view.budget.value = 1.25, 20  # not all cached by the other tests

    def switch_after_first_trial(change):
        if change["new"] and "trial  1" in change["new"]:
            view.status.unobserve(switch_after_first_trial, "value")
            state.session = None  # another model is being opened

    view.status.observe(switch_after_first_trial, "value")
    try:
        view.start.click()
        assert view.wait(TIMEOUT)
        assert view.worker.status.state is TaskState.CANCELLED, view.worker.status
        assert view.result is None and view.status.value == ""
        assert not any(len(trace.x) for trace in view.chart.figure.data)
    finally:
        view.close(timeout=TIMEOUT)
