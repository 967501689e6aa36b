"""Widgets, headless: drive the controls, wait on the worker's finished event, check the
session's cache and the figures and tables changed. Real conversions on digits_cnn; each test
opens its own app (on one shared session, whose cache only saves time) and sets up what it needs."""

from __future__ import annotations

import datetime
import io
import threading
from pathlib import Path

import numpy as np
import pytest

from workbench.qtyping import Granularity, IOType, Mode, QuantConfig, Route, VariantResult
from workbench.widgets.tasks import TaskState, TaskStatus, Worker

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
    started, gate, delivered = threading.Event(), threading.Event(), []

    def slow(job):
        started.set()
        gate.wait(10)
        job.step(TaskState.EVALUATING)  # raises Cancelled: a newer job exists
        job.deliver(lambda: delivered.append("slow"))

    worker.submit(slow, "slow")
    assert started.wait(10)  # the slow job is running, not merely queued
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
    started, gate = threading.Event(), threading.Event()
    worker.submit(lambda job: (started.set(), gate.wait(10), job.step(TaskState.EVALUATING)), "l")
    assert started.wait(10)
    worker.cancel()
    gate.set()
    assert worker.wait(10)
    assert worker.status.state is TaskState.CANCELLED
    worker.close()


class _CancelBeforeFailureIsDelivered:
    """A delivery lock that, when the worker thread is about to take it for a failed job's
    report, first lets the test thread cancel the job (the race of a real Cancel click)."""

    def __init__(self, raised: threading.Event) -> None:
        self._lock = threading.RLock()
        self._raised = raised
        self.cancel_now, self.cancelled = threading.Event(), threading.Event()

    def __enter__(self):
        if self._raised.is_set() and threading.current_thread() is not threading.main_thread():
            if not self.cancel_now.is_set():
                self.cancel_now.set()
                self.cancelled.wait(10)
        self._lock.acquire()
        return self

    def __exit__(self, *exc):
        self._lock.release()


def test_cancel_is_never_overwritten_by_a_stale_failure():
    raised = threading.Event()
    lock = _CancelBeforeFailureIsDelivered(raised)
    worker = Worker(deliver_lock=lock)

    def fail(job):
        raised.set()
        raise ValueError("late failure")

    worker.submit(fail, "failing")
    assert lock.cancel_now.wait(10)
    worker.cancel()
    lock.cancelled.set()
    assert worker.join(10)
    assert worker.status.state is TaskState.CANCELLED, worker.status


def _workbench_threads() -> int:
    return sum(t.name == "workbench-worker" for t in threading.enumerate())


def test_idle_and_closed_workers_hold_no_thread():
    before = _workbench_threads()
    workers = [Worker() for _ in range(5)]
    assert _workbench_threads() == before  # nothing to do: no thread
    gates = [threading.Event() for _ in workers]
    for worker, gate in zip(workers, gates, strict=True):
        worker.submit(lambda job, gate=gate: (gate.wait(10), job.step(TaskState.EVALUATING)))
    assert _workbench_threads() == before + 5
    for worker in workers[:3]:
        worker.close()  # wakes the job's cancel; the thread ends after the step
    for gate in gates:
        gate.set()
    assert all(worker.join(10) for worker in workers)
    assert _workbench_threads() == before
    assert [w.status.state for w in workers[3:]] == [TaskState.DONE, TaskState.DONE]


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


def _litert_quantize(value: float, low: float, high: float) -> tuple[int, float, int]:
    """Run LiteRT's QUANTIZE op on `value`: a tiny model whose input is calibrated on
    [low, high]; returns the integer and the scale and zero point the op used."""
    import keras
    import tensorflow as tf

    from workbench.engine.evaluation import make_interpreter

    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: iter([[np.array([[low, high]], np.float32)]])
    interpreter = make_interpreter(converter.convert(), experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    quantize = next(op for op in interpreter._get_ops_details() if op["op_name"] == "QUANTIZE")
    output = quantize["outputs"][0]
    interpreter.set_tensor(
        interpreter.get_input_details()[0]["index"], np.array([[value, 0.0]], np.float32)
    )
    interpreter.invoke()
    scale, zero_point = interpreter.get_tensor_details()[output]["quantization"]
    return int(interpreter.get_tensor(output)[0, 0]), scale, zero_point


def test_affine_explainer_shows_the_exact_and_the_kernel_integer_of_a_tie():
    from workbench.widgets import AffineExplainer
    from workbench.widgets.explainer import explain

    kernel, scale, zero_point = _litert_quantize(1.5, -3.0, 6.0)
    info = explain(-3.0, 6.0, "int8")
    example = info["example"]
    assert example["value"] == 1.5
    assert (np.float32(info["scale"]), info["zero_point"]) == (np.float32(scale), zero_point)
    assert example["kernel"] == kernel  # what LiteRT's QUANTIZE op really gave
    assert example["exact"] == 0 and kernel == -1  # 42.5 steps, a tie, and 42.499996
    text = AffineExplainer().example.value
    assert "integer 0" in text and "gives -1" in text and "float32" in text


def test_board_latency_shows_spread_and_marks_noise():
    from workbench.widgets.html import board_table, latency_text

    assert latency_text(0.41234, 0.031) == "0.41 (0.03)"
    assert latency_text(12.345, 2.5) == "12 (2)"
    float32 = _result(QuantConfig(mode=Mode.FLOAT32), latency=1.00, spread=0.10)
    close = _result(QuantConfig(), latency=1.05, spread=0.08)
    far = _result(QuantConfig(granularity=Granularity.PER_TENSOR), latency=0.50, spread=0.05)
    table = board_table([float32, close, far], current_key=far.config.key)
    rows = table.split("</table>")[0].split("<tr data-key=")
    assert "≈" not in rows[1] and "≈" in rows[2] and "≈" not in rows[3]


def _result(config: QuantConfig, *, latency: float, spread: float) -> VariantResult:
    return VariantResult(config, 1000, 1.0, 0.9, 0.0, 1.0, 40.0, 1.0, latency, spread, 1, 0.0)


def test_empty_charts_show_a_message_not_axes():
    from workbench.widgets import figures

    for figure in (figures.board_chart([]), figures.empty("t", "nothing yet")):
        assert not figure.data
        assert figure.layout.xaxis.visible is False
        assert figure.layout.annotations[0].text
    board = figures.board_chart([_result(QuantConfig(), latency=1.0, spread=0.1)])
    assert board.layout.showlegend and board.data[0].name == "int8 · per-channel"
    assert board.data[0].text == ("0.977",)  # the size in KB, on the bar


# --- the app on digits_cnn: each test opens its own app on a shared session -------------------


@pytest.fixture(scope="module")
def session(digits_model, digits):
    from workbench.session import Session

    return Session(digits_model, digits)


@pytest.fixture
def app(session):
    from workbench.widgets import Workbench

    app = Workbench(session)
    assert app.wait(TIMEOUT), app.state.status
    yield app
    app.close(timeout=TIMEOUT)


def _board_label(app) -> str:
    rows = app.board.table.value.split('data-role="current"')
    assert len(rows) == 2, app.board.table.value
    return rows[1].split('data-label="')[1].split('"')[0]


def _set(app, control, value) -> None:
    control.value = value
    assert app.wait(TIMEOUT), app.state.status


def test_first_render_measures_baseline_current_and_ranges(app):
    state = app.state
    assert state.status.state is TaskState.DONE, state.status
    assert state.baseline.config.mode is Mode.FLOAT32
    assert state.result.config == QuantConfig()
    assert state.result.layer_errors, "int8 variant has per-layer errors"
    assert state.summary is not None and state.float_summary is not None
    assert state.inspection is not None and state.inspection.weights
    assert _board_label(app) == QuantConfig().label
    names = {trace.name for trace in app.board.chart.figure.data}
    assert names == {"float32", f"{QuantConfig().label} (current)"}
    assert len(app.board.chart.figure.data) == 4 * 2  # four panels, two variants
    assert len(app.layer_errors.chart.figure.data[0].x) == len(state.result.layer_errors)
    assert app.ranges.weights.figure.data and app.ranges.channels.figure.data
    assert set(app.accessibility.names) >= {"wb-board-chart", "wb-layer-error-chart"}


def test_litert_route_is_prepared_in_the_background(app):
    assert app.state.config.route is Route.CONVERTER  # nobody asked for LiteRT yet
    samples = app.state.config.calibration_samples
    litert = QuantConfig(route=Route.LITERT, mode=Mode.INT8, calibration_samples=samples)
    assert app.state.warmup_status.state is TaskState.DONE  # this app's warm-up ran
    assert app.session.variant(litert).cached
    baseline = QuantConfig(route=Route.LITERT, mode=Mode.FLOAT32)
    assert app.session.cached_result(baseline) is not None
    assert 'data-idle="1"' in app.status.line.value


def test_toggling_controls_converts_and_updates_board(app):
    session, controls = app.session, app.controls
    _set(app, controls.granularity, Granularity.PER_TENSOR.value)
    config = QuantConfig(granularity=Granularity.PER_TENSOR)
    assert app.state.result.config == config
    assert session.cached_result(config) is not None
    assert _board_label(app) == config.label
    sizes = [trace.y[0] for trace in app.board.chart.figure.data[::4]]
    _set(app, controls.mode, Mode.FLOAT16.value)
    assert app.state.result.config.mode is Mode.FLOAT16
    assert _board_label(app) == app.state.result.label
    assert [trace.y[0] for trace in app.board.chart.figure.data[::4]] != sizes
    assert app.controls.granularity.disabled
    controls.mode.value = Mode.INT8.value  # back to int8: the granularity choice is kept
    assert app.state.config == config


def test_cached_variant_is_applied_without_the_worker(app):
    _set(app, app.controls.mode, Mode.FLOAT16.value)  # measured here, so cached below
    _set(app, app.controls.mode, Mode.INT8.value)
    generation = app.controller.worker.generation
    app.controls.mode.value = Mode.FLOAT16.value
    assert app.state.result.config.mode is Mode.FLOAT16  # at once, no wait
    assert app.state.status.message == "from cache"
    assert app.controller.worker.generation == generation + 1


def test_returning_to_a_cached_variant_restores_its_baseline(app):
    _set(app, app.controls.route, Route.LITERT.value)
    assert app.state.baseline.config.route is Route.LITERT
    app.controls.route.value = Route.CONVERTER.value  # cached: applied without the worker
    assert app.state.status.message == "from cache"
    assert app.state.baseline.config == QuantConfig(mode=Mode.FLOAT32)
    assert 'data-role="baseline" data-label="float32"' in app.board.table.value


def test_detail_work_superseded_by_a_new_request_does_not_leave_a_busy_status(app):
    measuring = threading.Event()

    def on_detail(change):
        if change["new"].message == "per-layer error":
            measuring.set()

    app.state.observe(on_detail, "detail_status")
    # A configuration no other test measures, so its per-layer error is not cached.
    app.state.config = QuantConfig(granularity=Granularity.PER_TENSOR, calibration_samples=25)
    assert measuring.wait(TIMEOUT)
    app.controls.mode.value = Mode.FLOAT16.value  # before the per-layer error is done
    assert app.wait(TIMEOUT)
    assert not app.state.detail_status.state.busy, app.state.detail_status
    assert 'data-idle="1"' in app.status.line.value
    assert "per-layer error" not in app.status.line.value
    assert app.status.cancel.disabled


def test_quick_toggles_end_on_the_last_one(app):
    controls = app.controls
    for index in range(20):
        controls.granularity.value = ("per-tensor", "per-channel")[index % 2]
    controls.io_type.value = IOType.INT8.value
    assert app.wait(TIMEOUT)
    expected = QuantConfig(granularity=Granularity.PER_CHANNEL, io_type=IOType.INT8)
    assert app.state.config == expected
    assert app.state.result.config == expected
    assert _board_label(app) == expected.label


def test_int16x8_on_the_converter_offers_per_channel_only_with_depthwise_layers():
    from workbench.inspection.layers import LayerRow
    from workbench.inspection.report import Inspection
    from workbench.widgets.controls import ControlsView
    from workbench.widgets.state import AppState

    state = AppState()
    controls = ControlsView(state)
    controls.granularity.value = Granularity.PER_TENSOR.value
    controls.mode.value = Mode.INT16X8.value  # no depthwise layer (digits_cnn): both work
    assert state.config.granularity is Granularity.PER_TENSOR
    assert not controls.granularity.disabled and not controls.note.value
    controls.mode.value = Mode.INT8.value
    row = LayerRow("dw", "DepthwiseConv2D", 27, 108, 54, 27)
    state.inspection = Inspection(layers=(row,))  # a model the converter fails on
    controls.mode.value = Mode.INT16X8.value
    assert state.config.granularity is Granularity.PER_CHANNEL
    assert controls.granularity.disabled
    assert controls.granularity.value == Granularity.PER_CHANNEL.value
    assert "per-channel only" in controls.note.value
    controls.route.value = Route.LITERT.value  # the LiteRT Quantizer has both
    assert not controls.granularity.disabled and not controls.note.value
    assert state.config.granularity is Granularity.PER_TENSOR
    controls.route.value = Route.CONVERTER.value
    controls.mode.value = Mode.INT8.value  # the per-tensor choice is kept
    assert state.config == QuantConfig(granularity=Granularity.PER_TENSOR)


def test_a_click_during_a_delivery_is_not_undone_by_it():
    """A delivery (on a worker's thread, holding the state's lock) writes a config it read
    before the user's click, and the controls show that older config: the click, handled on
    the kernel's thread once the delivery is done, still wins, on screen and in the state."""
    from workbench.widgets.controls import ControlsView
    from workbench.widgets.state import AppState

    state = AppState()
    controls = ControlsView(state)
    clicked = threading.Event()

    def deliver() -> None:
        with state.lock:  # as `Job.deliver` holds it
            before = state.config
            clicked.set()
            deadline = datetime.datetime.now() + datetime.timedelta(seconds=10)
            while controls.mode.value != Mode.FLOAT16.value:  # the click reached the widget
                assert datetime.datetime.now() < deadline
            threading.Event().wait(0.2)  # the click's handler, unguarded, would run now
            state.config = before.replace(calibration_samples=50)  # the model loader's write

    delivery = threading.Thread(target=deliver)
    delivery.start()
    assert clicked.wait(10)
    controls.mode.value = Mode.FLOAT16.value  # waits for the delivery's lock
    delivery.join(10)
    assert state.config == QuantConfig(mode=Mode.FLOAT16, calibration_samples=50)
    assert controls.mode.value == Mode.FLOAT16.value


def test_new_options_keep_the_selection_without_a_round_trip_through_the_first():
    """ipywidgets selects the first option on a change of options; sent to the browser, that
    replaced a click in flight (float16 clicked, then int8: the browser showed float16)."""
    import ipywidgets as w

    from workbench.widgets.view import offer

    modes = ["float32", "dynamic", "float16", "int8"]
    plain, kept = (w.ToggleButtons(options=modes, value="int8") for _ in range(2))
    moves = {id(plain): [], id(kept): []}
    for toggle in (plain, kept):
        toggle.observe(lambda change: moves[id(change["owner"])].append(change["new"]), "index")
    plain.options = [*modes, "int4"]
    plain.value = "int8"
    offer(kept, [*modes, "int4"])
    assert moves[id(plain)] == [0, 3] and moves[id(kept)] == []  # nothing sent for `kept`
    assert (kept.value, kept.index) == ("int8", 3)
    offer(kept, ["int8", "float32"])  # the value moves: its new place is sent
    assert (kept.value, kept.label, kept.index, moves[id(kept)]) == ("int8", "int8", 0, [0])
    offer(kept, [("8-bit", "int8")])  # another label for the same value
    assert (kept.value, kept.label, kept.index) == ("int8", "8-bit", 0)
    offer(kept, [("dynamic range", "dynamic")])  # not offered any more: ipywidgets' reset
    assert kept.value == "dynamic"


def test_a_click_on_an_option_no_longer_offered_gets_the_kernels_selection_back():
    """The browser sends a button's index; a click on int4 after the converter route removed it
    (the new buttons not drawn yet) is out of range, and ipywidgets, having echoed it, leaves
    it pressed on screen. The kernel answers with its own selection."""
    import ipywidgets as w

    from workbench.widgets.view import OfferedToggleButtons

    modes = ["float32", "dynamic", "float16", "int8", "int16x8"]
    sent = {}
    for kind in (w.ToggleButtons, OfferedToggleButtons):
        toggle = kind(options=modes, value="int8")
        sent[kind] = []
        toggle._send = lambda msg, buffers=None, kind=kind: sent[kind].append(msg)
        try:
            toggle.set_state({"index": 5})  # int4, in the browser's old buttons
        except Exception:  # noqa: BLE001 - what ipywidgets does: the kernel logs it
            pass
        assert toggle.value == "int8"
    echo = {"method": "echo_update", "state": {"index": 5}, "buffer_paths": []}
    assert sent[w.ToggleButtons] == [echo]  # the browser keeps index 5: a stale button
    assert sent[OfferedToggleButtons][0] == echo
    assert sent[OfferedToggleButtons][1]["state"] == {"index": 3}  # int8 pressed again


def test_board_after_a_failure_marks_no_old_row_current():
    from workbench.widgets.board import BoardView
    from workbench.widgets.state import AppState

    state = AppState()
    board = BoardView(state)
    baseline = _result(QuantConfig(mode=Mode.FLOAT32), latency=1.0, spread=0.1)
    int8 = _result(QuantConfig(), latency=0.5, spread=0.1)
    state.results = {baseline.config.key: baseline, int8.config.key: int8}
    state.baseline, state.result = baseline, int8
    assert f'data-key="{int8.config.key}" data-role="current"' in board.table.value
    state.config = QuantConfig(mode=Mode.DYNAMIC)  # asked for; the job then fails
    label = state.config.label
    state.status = TaskStatus(TaskState.FAILED, 3, label, "conversion failed: reason")
    table = board.table.value
    assert 'data-role="current"' not in table
    assert f'data-key="{int8.config.key}" data-role="previous"' in table
    assert f'data-role="failed" data-label="{label}"' in table and "reason" in table
    assert board.pin.disabled  # the row on screen is not the configuration asked for


def test_a_failed_model_switch_still_measures_the_toggle_it_superseded(app):
    """A toggle, then at once a model that cannot open on this data: the board ends on the
    toggle's variant of the model still open, and the status on the load's one-line error."""
    session = app.state.session
    app.state.config = QuantConfig(mode=Mode.DYNAMIC)
    app.pickers.model.value = "shapes_mobilenet"  # its 32x32x3 input does not fit 8x8x1 digits
    assert app.wait(TIMEOUT), app.state.status
    assert app.state.status.state is TaskState.FAILED, app.state.status
    assert "shapes_mobilenet" in app.state.status.label and "(8, 8, 1)" in app.status.line.value
    assert app.state.session is session and app.pickers.model.value == session.model.name
    assert app.state.result.config == app.state.config
    assert _board_label(app) == app.state.config.label


def test_keep_in_float_starts_on_the_worst_layer_and_has_its_own_selection(app):
    errors = app.state.result.layer_errors
    worst = max(errors, key=lambda e: e.rmse_per_scale).layer
    assert app.layer_errors.layer.value == worst
    others = [n for n in app.ranges.layer.options if n != worst]
    app.ranges.select(others[-1])  # a click far down the page, in the range explorer
    assert app.state.selected_layer == others[-1]
    assert app.layer_errors.layer.value == worst  # not what gets kept
    app.layer_errors.keep.click()
    assert app.wait(TIMEOUT)
    assert app.state.result.config.keep_float == frozenset({worst})
    assert app.controls.keep_float.value == (worst,)
    app.controls.clear.click()
    assert app.wait(TIMEOUT)
    assert not app.state.result.config.keep_float


def test_keep_suggested_layers_adds_to_the_users_choice(app):
    from workbench.widgets.controls import suggested_layers

    own = app.state.layer_names[0]
    _set(app, app.controls.keep_float, (own,))
    suggested = suggested_layers(app.state)
    assert suggested and own not in suggested, app.state.result.layer_errors
    app.controls.suggest.click()
    assert app.state.config.keep_float == frozenset({own, *suggested})
    assert app.wait(TIMEOUT)


def test_pin_and_downloads(app):
    app.board.pin.click()
    pinned = app.state.result.config
    _set(app, app.controls.granularity, Granularity.PER_TENSOR.value)
    roles = app.board.table.value
    assert f'data-key="{pinned.key}" data-role="pinned"' in roles
    assert "comparison.csv" in app.board.links.value
    app.board.variant.value = pinned.key
    app.board.prepare.click()
    assert ".tflite" in app.board.links.value


def test_error_reaches_the_status_line(app):
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
    other = next(name for name in shown if name != errors.layer.value)
    _click(errors.chart, shown.index(other))
    assert errors.layer.value == other  # the layer to keep in float
    assert app.state.selected_layer == target  # the range explorer keeps its own
    widths = list(errors.chart.figure.data[0].marker.line.width)
    assert widths[shown.index(other)] > 0 and sum(width > 0 for width in widths) == 1


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


def test_what_got_quantized_view(app):
    text = app.quantized.tables.value  # int8 with float I/O: QUANTIZE at the input
    assert app.session.layer_names and all(n in text for n in app.session.layer_names)
    assert '<div class="wb-scroll"><table class="wb-quantized-ops">' in text  # long names wrap
    _set(app, app.controls.io_type, IOType.INT8.value)
    text = app.quantized.tables.value
    assert "float32 → int8" in text  # the model input became int8
    assert "No QUANTIZE / DEQUANTIZE ops" in text


# --- uploads -----------------------------------------------------------------------------------


def _upload(view, name: str, content: bytes) -> None:
    view.value = (
        {
            "name": name,
            "type": "",
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime.datetime.now(datetime.UTC),
        },
    )


def test_upload_of_a_wrong_file_type_or_size_is_a_clear_message(app, monkeypatch):
    session = app.session
    _upload(app.pickers.model_upload, "notes.txt", b"hello")
    assert app.state.status.state is TaskState.FAILED
    assert "notes.txt" in app.status.line.value and ".keras" in app.status.line.value
    for name in ("data.csv", ".npz"):
        _upload(app.pickers.data_upload, name, b"1,2")
        assert f"upload {name!r}: expected a .npz / .zip data file" == app.state.status.message
    for name in ("notes.keras", "notes.npz", "notes.h5", "notes.tflite"):
        view = app.pickers.data_upload if name.endswith(".npz") else app.pickers.model_upload
        _upload(view, name, b"just some text\n")
        message = app.state.status.message
        assert message.startswith(f"upload {name!r}: not a .") and "allow_pickle" not in message
    monkeypatch.setenv("WORKBENCH_MAX_UPLOAD_MB", "0.001")
    _upload(app.pickers.model_upload, "big.keras", b"0" * 4096)
    message = app.state.status.message
    assert "big.keras" in message and "upload limit" in message and "\n" not in message
    assert app.session is session
    assert not list(app.pickers.upload_folder.iterdir())  # nothing was written


def test_model_uploaded_without_data_then_data(app, tmp_path, digits):
    from workbench.models import DEMO_MODELS, load_model
    from workbench.widgets.pickers import OWN_DATA

    pickers = app.pickers
    model_file = Path(__file__).resolve().parent.parent / "workbench" / "demo" / "digits_cnn.keras"
    assert "digits_cnn" in DEMO_MODELS
    _set(app, pickers.data, OWN_DATA)  # an uploaded model has no data of its own
    _upload(pickers.model_upload, "mine.keras", model_file.read_bytes())
    assert app.wait(TIMEOUT)
    state = app.state
    assert state.status.state is TaskState.FAILED
    assert "Data" in state.status.message and "upload a .npz" in state.status.message
    assert "Session" not in state.status.message
    assert 'data-idle="1"' in app.status.line.value  # nothing runs, nothing will come
    assert state.inspection is not None and state.inspection.weights  # ranges of this model
    assert "Measuring" not in app.ranges.note.value
    assert list(app.ranges.layer.options) == [w.layer for w in state.inspection.weights]
    assert not list(pickers.upload_folder.iterdir())  # the model is in memory: file removed
    buffer = io.BytesIO()
    np.savez(buffer, x=digits.test.x[:200], y=digits.test.y[:200])
    _upload(pickers.data_upload, "mine.npz", buffer.getvalue())
    assert app.wait(TIMEOUT), state.status
    assert state.status.state is TaskState.DONE, state.status
    assert state.result is not None and state.session.data is not None
    assert pickers.data.label == "mine.npz (uploaded)"
    assert len(list(pickers.upload_folder.iterdir())) == 1  # the data in use
    folder = pickers.upload_folder
    assert load_model("digits_cnn").name  # the demo is untouched
    app.close(timeout=TIMEOUT)
    assert not folder.exists()


def _zip(members: dict[str, bytes]) -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _png(seed: int) -> bytes:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (16, 16, 3)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_zip_of_an_image_folder_is_unpacked_and_measured(app, monkeypatch):
    """A workshop's own images, zipped (a top folder, class sub-folders, macOS' extras), are
    resized to the model's input and measured; a zip that is not one, reaches outside itself or
    unpacks too large is refused in one line and leaves nothing behind."""
    pickers, state = app.pickers, app.state
    images = {f"pets/{('cat', 'dog')[i % 2]}/{i}.png": _png(i) for i in range(20)}
    images["__MACOSX/pets/._0.png"] = b"resource fork"
    _upload(pickers.data_upload, "pets.zip", _zip(images))
    assert app.wait(TIMEOUT), state.status
    assert state.status.state is TaskState.DONE, state.status
    assert pickers.data.label == "pets (uploaded)"
    assert state.session.data.num_classes == 2 and state.result.accuracy is not None
    (kept,) = pickers.upload_folder.iterdir()
    assert sorted(p.name for p in kept.iterdir()) == ["pets"]  # no archive, no __MACOSX
    assert sorted(p.name for p in (kept / "pets").iterdir()) == ["cat", "dog"]
    monkeypatch.setenv("WORKBENCH_MAX_UPLOAD_MB", "0.01")
    refusals = {
        "evil.zip": (_zip({"../evil.png": _png(0)}), "points outside the archive"),
        "broken.zip": (b"PK\x03\x04" + b"not really a zip", "not a readable .zip archive"),
        "bomb.zip": (_zip({"zeros/a/0.png": bytes(200_000)}), "unpacks to more than 0.08 MB"),
    }
    for name, (content, reason) in refusals.items():
        _upload(pickers.data_upload, name, content)
        message = state.status.message
        assert state.status.state is TaskState.FAILED and message.startswith(f"upload {name!r}")
        assert reason in message and "\n" not in message
        assert list(pickers.upload_folder.iterdir()) == [kept]  # nothing of it was left
    assert pickers.data.label == "pets (uploaded)"


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


def test_a_broken_upload_is_named_by_its_file_name_not_a_server_path(app):
    """A zip named .keras that is no model: the load fails with the file's name, never the
    private temporary folder it was written to."""
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "not a model")
    _upload(app.pickers.model_upload, "zipped.keras", buffer.getvalue())
    assert app.wait(TIMEOUT)
    message = app.state.status.message
    assert app.state.status.state is TaskState.FAILED and "zipped.keras" in message, message
    assert str(app.pickers.upload_folder) not in message and "/tmp" not in message, message


def test_a_demo_opened_by_name_switches_to_another_demo_with_its_own_data(tmp_path):
    """`workbench dashboard digits_cnn`, then shapes_mobilenet chosen in the Model menu: the
    Data menu said "(model's own)", so shapes_mobilenet opens on its own shapes data (it was
    given digits, whose 8x8x1 images it cannot take)."""
    from workbench.widgets import Workbench
    from workbench.widgets.pickers import OWN_DATA

    app = Workbench("digits_cnn", config=QuantConfig(mode=Mode.FLOAT16), layer_errors=False)
    try:
        assert app.wait(TIMEOUT), app.state.status
        assert app.pickers.data.value == OWN_DATA
        app.pickers.model.value = "shapes_mobilenet"
        assert app.wait(TIMEOUT), app.state.status
        assert app.state.status.state is TaskState.DONE, app.state.status
        assert app.session.model.name == "shapes_mobilenet"
        assert app.session.data.name == "shapes" and app.pickers.data.value == OWN_DATA
    finally:
        app.close(timeout=TIMEOUT)
