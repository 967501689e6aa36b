"""Widgets, headless: drive the controls, wait on the worker's finished event, check the
session's cache and the figures and tables changed. Real conversions on digits_cnn."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from workbench.qtyping import Granularity, IOType, Mode, QuantConfig, Route
from workbench.widgets.tasks import Cancelled, TaskState, Worker

TIMEOUT = 120


# --- the worker on its own -------------------------------------------------------------------


def test_worker_runs_newest_job_and_reports_states():
    seen = []
    worker = Worker(seen.append)
    done = []
    generation = worker.submit(lambda job: (job.step(TaskState.CONVERTING), done.append(1)), "a")
    assert worker.wait(10)
    assert done == [1]
    states = [s.state for s in seen if s.generation == generation]
    assert states == [TaskState.QUEUED, TaskState.CONVERTING, TaskState.DONE]
    worker.close()


def test_newer_job_supersedes_running_one():
    worker = Worker()
    gate, delivered = threading.Event(), []

    def slow(job):
        gate.wait(10)
        job.step(TaskState.EVALUATING)  # raises Cancelled: a newer job exists
        job.deliver(lambda: delivered.append("slow"))

    worker.submit(slow, "slow")
    worker.submit(lambda job: job.deliver(lambda: delivered.append("fast")), "fast")
    gate.set()
    assert worker.wait(10)
    assert delivered == ["fast"]
    assert worker.status.state is TaskState.DONE and worker.status.label == "fast"
    worker.close()


def test_failure_becomes_a_status_message_and_cancel_keeps_result():
    worker = Worker()

    def boom(job):
        raise ValueError("bad thing")

    worker.submit(boom, "boom")
    assert worker.wait(10)
    assert worker.status.state is TaskState.FAILED
    assert "bad thing" in worker.status.message
    gate = threading.Event()
    worker.submit(lambda job: (gate.wait(10), job.step(TaskState.EVALUATING)), "long")
    worker.cancel()
    gate.set()
    assert worker.wait(10)
    assert worker.status.state is TaskState.CANCELLED
    worker.close()
    assert issubclass(Cancelled, Exception)


# --- pure builders -----------------------------------------------------------------------------


def test_affine_explainer_starts_on_minus3_6_int8():
    from workbench.widgets import AffineExplainer
    from workbench.widgets.explainer import explain

    info = explain(-3.0, 6.0, "int8")
    assert info["zero_point"] == pytest.approx(-128 + round(3 / info["scale"]), abs=1)
    assert info["scale"] == pytest.approx(9 / 255, rel=1e-3)
    assert info["max_rounding_error"] <= info["scale"] / 2 + 1e-6
    assert info["max_clipping_error"] > info["scale"]
    explainer = AffineExplainer()
    before = explainer.chart.figure.data[0].y
    explainer.dtype.value = "int16"
    assert "65535" in explainer.numbers.value or "32767" in explainer.numbers.value
    assert explainer.chart.figure.data[0].y != before


# --- the app on digits_cnn ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(digits_model, digits):
    from workbench.session import Session
    from workbench.widgets import Workbench

    app = Workbench(Session(digits_model, digits))
    assert app.wait(TIMEOUT), app.state.status
    yield app
    app.close()


def _board_label(app) -> str:
    rows = app.board.table.value.split('data-role="current"')
    assert len(rows) == 2, app.board.table.value
    return rows[1].split('data-label="')[1].split('"')[0]


def test_first_render_measures_baseline_current_and_ranges(app):
    state = app.state
    assert state.status.state is TaskState.DONE, state.status
    assert state.baseline.config.mode is Mode.FLOAT32
    assert state.result.config == QuantConfig()
    assert state.result.layer_errors, "int8 variant has per-layer errors"
    assert state.summary is not None and state.float_summary is not None
    assert state.inspection is not None and state.inspection.weights
    assert _board_label(app) == QuantConfig().label
    assert len(app.board.chart.figure.data) == 4
    assert list(app.board.chart.figure.data[0].x) == [r.label for r in state.board_rows()]
    assert len(app.layer_errors.chart.figure.data[0].x) == len(state.result.layer_errors)
    assert app.ranges.weights.figure.data and app.ranges.channels.figure.data


def test_litert_route_is_prepared_in_the_background(app):
    assert app.state.config.route is Route.CONVERTER  # nobody asked for LiteRT yet
    samples = app.state.config.calibration_samples
    litert = QuantConfig(route=Route.LITERT, mode=Mode.INT8, calibration_samples=samples)
    assert app.state.warmup_status.state is TaskState.DONE
    assert app.session.variant(litert).cached  # the warm-up converted it, not this call
    baseline = QuantConfig(route=Route.LITERT, mode=Mode.FLOAT32)
    assert app.session.cached_result(baseline) is not None
    assert 'data-idle="1"' in app.status.line.value


def test_toggling_controls_converts_and_updates_board(app):
    session, controls = app.session, app.controls
    old_sizes = list(app.board.chart.figure.data[0].y)
    controls.granularity.value = Granularity.PER_TENSOR.value
    assert app.wait(TIMEOUT)
    config = QuantConfig(granularity=Granularity.PER_TENSOR)
    assert app.state.result.config == config
    assert session.cached_result(config) is not None
    assert _board_label(app) == config.label
    controls.mode.value = Mode.FLOAT16.value
    assert app.wait(TIMEOUT)
    assert app.state.result.config.mode is Mode.FLOAT16
    assert _board_label(app) == app.state.result.label
    assert list(app.board.chart.figure.data[0].y) != old_sizes
    assert app.controls.granularity.disabled
    controls.mode.value = Mode.INT8.value  # back to int8: the granularity choice is kept
    assert app.state.config == config


def test_cached_variant_is_applied_without_the_worker(app):
    app.controls.mode.value = Mode.INT8.value
    app.controls.granularity.value = Granularity.PER_CHANNEL.value
    assert app.wait(TIMEOUT)
    generation = app.controller.worker.generation
    app.controls.mode.value = Mode.FLOAT16.value  # measured in the previous test
    assert app.state.result.config.mode is Mode.FLOAT16  # at once, no wait
    assert app.state.status.message == "from cache"
    assert app.controller.worker.generation == generation + 1


def test_quick_toggles_end_on_the_last_one(app):
    controls = app.controls
    controls.mode.value = Mode.INT8.value
    for index in range(20):
        controls.granularity.value = ("per-tensor", "per-channel")[index % 2]
    controls.io_type.value = IOType.INT8.value
    assert app.wait(TIMEOUT)
    expected = QuantConfig(granularity=Granularity.PER_CHANNEL, io_type=IOType.INT8)
    assert app.state.config == expected
    assert app.state.result.config == expected
    assert _board_label(app) == expected.label


def test_keep_in_float_from_layer_error_view(app):
    app.controls.io_type.value = IOType.FLOAT32.value
    assert app.wait(TIMEOUT)
    shown = app.layer_errors.layer
    layer = next(name for name in shown.options if name != shown.value)
    shown.value = layer
    assert app.state.selected_layer == layer
    app.layer_errors.keep.click()
    assert app.wait(TIMEOUT)
    assert app.state.result.config.keep_float == frozenset({layer})
    assert app.controls.keep_float.value == (layer,)
    app.controls.clear.click()
    assert app.wait(TIMEOUT)
    assert not app.state.result.config.keep_float


def test_pin_and_downloads(app):
    app.board.pin.click()
    pinned = app.state.result.config
    app.controls.granularity.value = Granularity.PER_TENSOR.value
    assert app.wait(TIMEOUT)
    roles = app.board.table.value
    assert f'data-key="{pinned.key}" data-role="pinned"' in roles
    assert "comparison.csv" in app.board.links.value
    app.board.variant.value = pinned.key
    app.board.prepare.click()
    assert ".tflite" in app.board.links.value


def test_error_reaches_the_status_line(app):
    app.controls.route.value = Route.LITERT.value
    app.controls.mode.value = Mode.INT4.value
    assert app.wait(TIMEOUT)
    app.pickers._load("no/such/model.keras", None, "missing")
    assert app.wait(TIMEOUT)
    assert app.state.status.state is TaskState.FAILED
    assert "model.keras" in app.status.line.value
    assert 'data-state="failed"' in app.status.line.value
    assert app.session is not None  # the previous session stays on screen


def test_range_explorer_selection(app):
    names = [s.layer for s in app.state.inspection.weights]
    app.state.selected_layer = names[-1]
    colors = list(app.ranges.weights.figure.data[0].marker.color)
    assert colors[-1] != colors[0]
    assert names[-1] in app.ranges.channels.figure.layout.title.text
    assert np.isfinite(np.asarray(app.ranges.channels.figure.data[0].y, dtype=float)).all()


def _click(plot, index: int) -> None:
    """What plotly's front end sends when a user clicks point `index` of the first trace."""
    trace = plot.figure.data[0]
    plot.figure._js2py_pointsCallback = {
        "event_type": "plotly_click",
        "points": {
            "xs": [trace.x[index]],
            "ys": [trace.y[index]],
            "point_indexes": [index],
            "trace_indexes": [0],
        },
        "device_state": {"alt": False, "ctrl": False, "meta": False, "shift": False},
        "selector": None,
    }


def test_clicking_a_bar_selects_its_layer_as_the_dropdown_does(app):
    from plotly.graph_objects import FigureWidget

    ranges, errors = app.ranges, app.layer_errors
    assert isinstance(ranges.weights.figure, FigureWidget)
    names = list(ranges.weights.figure.data[0].x)
    target = next(name for name in reversed(names) if name != app.state.selected_layer)
    _click(ranges.weights, names.index(target))
    assert app.state.selected_layer == target
    assert ranges.layer.value == target
    assert ranges.channels.figure.layout.title.text.startswith(f"{target}:")
    colors = list(ranges.weights.figure.data[0].marker.color)
    assert colors[names.index(target)] != colors[names.index(target) - 1]

    shown = list(errors.chart.figure.data[0].x)
    other = next(name for name in shown if name != target)
    _click(errors.chart, shown.index(other))
    assert app.state.selected_layer == other
    assert errors.layer.value == other and ranges.layer.value == other
    errors.layer.value = target  # the dropdown still selects, for keyboard users
    assert app.state.selected_layer == target


def test_figure_loader_gets_the_bundle_once_and_the_current_figure(app, monkeypatch):
    plot = app.ranges.weights
    sent = []
    monkeypatch.setattr(plot.widget.comm, "send", lambda data, buffers=None: sent.append(data))
    plot.widget._widget_data = []  # what a front end that connected too early would hold
    plot._on_message(plot.widget, {"type": "sync"}, [])
    update, done = sent[-2:]
    assert update["method"] == "update" and done["content"] == {"type": "sync"}
    assert update["state"]["_widget_data"][0]["x"] == list(plot.figure.data[0].x)
    assert update["state"]["_widget_layout"]["title"]["text"] == "Weight range per layer"
    monkeypatch.setattr(
        plot.widget.comm, "send", lambda data, buffers=None: sent.append((data, buffers))
    )
    plot._on_message(plot.widget, {"type": "bundle"}, [])
    message, buffers = sent[-1]
    assert message["content"] == {"type": "bundle"}
    assert b"FigureModel" in bytes(buffers[0]) and len(buffers[0]) > 1_000_000


# --- the dashboard command ---------------------------------------------------------------------


def test_dashboard_command_serves_the_notebook_with_voila():
    from workbench.cli import build_parser
    from workbench.commands.dashboard import MODEL_ENV, dashboard_env, find_notebook, voila_command

    args = build_parser().parse_args(["dashboard", "digits_cnn", "--port", "9999", "--no-browser"])
    assert (args.model, args.port, args.host, args.no_browser) == (
        "digits_cnn",
        9999,
        "127.0.0.1",
        True,
    )
    notebook = find_notebook()
    assert notebook.name == "dashboard.ipynb"
    command = voila_command(notebook, port=9999, host="127.0.0.1", browser=False)
    assert (
        "--port=9999" in command and "--no-browser" in command and "--Voila.ip=127.0.0.1" in command
    )
    assert dashboard_env("digits_cnn", None)[MODEL_ENV] == "digits_cnn"


def test_dashboard_command_rejects_unknown_model(capsys):
    from workbench.cli import main

    assert main(["dashboard", "no_such_model", "--no-browser"]) == 2
    assert "no_such_model" in capsys.readouterr().err


def test_what_got_quantized_view(app):
    app.controls.route.value = Route.CONVERTER.value
    app.controls.mode.value = Mode.INT8.value
    app.controls.io_type.value = IOType.INT8.value
    assert app.wait(TIMEOUT)
    text = app.quantized.tables.value
    assert "float32 → int8" in text  # the model input became int8
    assert "QUANTIZE" in text
    assert all(name in text for name in app.session.layer_names)


def test_upload_of_a_wrong_file_type_is_a_clear_message(app):
    session = app.session
    app.pickers._on_model_upload({"new": [{"name": "notes.txt", "content": b"hello"}]})
    assert app.state.status.state is TaskState.FAILED
    assert "notes.txt" in app.status.line.value and ".keras" in app.status.line.value
    app.pickers._on_data_upload({"new": [{"name": "data.csv", "content": b"1,2"}]})
    assert "data.csv" in app.state.status.message and ".npz" in app.state.status.message
    assert app.session is session
