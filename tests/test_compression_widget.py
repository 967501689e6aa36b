"""The compression panel, headless: click Train, wait on the worker, read the board; Cancel."""

import base64

import pytest

from workbench.qtyping import QuantConfig
from workbench.session import Session
from workbench.widgets.compression import CompressionView
from workbench.widgets.state import AppState
from workbench.widgets.tasks import TaskState

TIMEOUT = 300


@pytest.fixture()
def panel():
    state = AppState(config=QuantConfig())
    state.session = Session("digits_cnn")
    view = CompressionView(state)
    yield view
    view.close(timeout=TIMEOUT)  # a cancelled training ends before the next test (or exit)


def test_equalize_pins_both_rows_and_draws_ranges(panel):
    panel.technique.value = "equalize"
    assert panel.sparsity.layout.display == "none" and panel.epochs.layout.display == "none"
    panel.train.click()
    assert panel.wait(TIMEOUT)
    assert panel.worker.status.state is TaskState.DONE, panel.worker.status.message
    board = panel.board.value
    assert "int8 · per-channel" in board
    assert "equalize + bias correction + int8 · per-channel" in board
    assert "equalize + bias correction + float32" in board
    assert panel.pair.options and panel.ranges.widget.layout.display == ""
    traces = panel.ranges.figure.data
    assert [t.name for t in traces] == ["before", "after"]
    assert [t.x for t in panel.kernels.figure.data][0] == ("conv1", "conv2", "dense", "classifier")


def test_training_draws_the_curve_and_cancel_keeps_the_session(panel):
    panel.technique.value = "prune"
    panel.epochs.value, panel.steps.value = 1, 3
    assert panel.sparsity.layout.display == ""
    panel.train.click()
    assert panel.wait(TIMEOUT)
    assert panel.worker.status.state is TaskState.DONE, panel.worker.status.message
    loss = panel.curve.figure.data[0]
    assert len(loss.y) == 3 and len(panel.curve.figure.data[1].y) == 1
    assert "prune 50 % + int8 · per-channel" in panel.board.value
    before = panel.board.value
    panel.sparsity.value = 0.7
    panel.train.click()
    assert not panel.curve.figure.data[0].y  # not the last run's curve
    panel.cancel.click()
    assert panel.wait(TIMEOUT)
    assert panel.worker.status.state is TaskState.CANCELLED
    assert panel.board.value == before


def test_compressed_rows_stand_on_the_comparison_board(panel):
    from workbench.widgets.board import BoardView

    board = BoardView(panel.state)
    panel.technique.value = "equalize"
    panel.train.click()
    assert panel.wait(TIMEOUT)
    labels = [row.label for row in panel.state.board_rows()]
    assert "equalize + bias correction + int8 · per-channel" in labels
    assert "equalize + bias correction + float32" in labels
    assert 'data-label="equalize + bias correction + int8 · per-channel"' in board.table.value
    assert len({row.key for row in panel.state.board_rows()}) == len(labels)
    compressed = panel.state.compressed[-1]
    assert compressed.to_dict()["compression"]["technique"] == "equalize"
    board.variant.value = compressed.key
    board.prepare.click()  # the compressed model's own .tflite, from its session's cache
    expected = panel.compression.session.variant(compressed.config).tflite
    original = panel.state.session.variant(compressed.config).tflite
    assert expected != original
    assert base64.b64encode(expected).decode() in board.links.value
    assert f"digits_cnn-{compressed.key.replace(':', '-')}.tflite" in board.links.value
    board.unpin.click()
    assert panel.state.board_rows() == []


def test_a_new_model_during_training_stops_it_and_pins_nothing_of_the_old_one(panel):
    """Another model opened while a training runs: the run is cancelled, nothing of the old
    model reaches the new board, the panel is cleared; other test samples keep it."""
    panel.state.pin_compressed([])
    panel.technique.value, panel.epochs.value = "prune", 3
    started = []

    def switch_on_first_batch(change):
        if change["new"].message == "training" and not started:
            started.append(True)
            panel.state.session = Session("digits_cnn")  # a new model object
            panel.state.clear_pins()  # as the dashboard's load does

    panel.worker.listener = lambda status: (
        CompressionView._on_status(panel, status),
        switch_on_first_batch({"new": status}),
    )
    panel.train.click()
    assert panel.wait(TIMEOUT)
    assert started and panel.worker.status.state is TaskState.CANCELLED, panel.worker.status
    assert panel.state.compressed == () and panel.compression is None
    assert panel.board.value == "" and not panel.rows
    twin = panel.state.session.with_test_samples(100)  # the same model: the panel stays
    panel.rows = [["kept"]]
    panel.state.session = twin
    assert panel.rows == [["kept"]]
