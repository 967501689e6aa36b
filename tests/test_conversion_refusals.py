"""A variant the converter refuses is a row marked unavailable; the others are still measured.

The model: a convolution followed by hard-swish, as in MobileNetV3. TFLite has no int16x8
kernel for HARD_SWISH, so the converter refuses int16x8 ("16x8-bit not yet supported for op:
'HARD_SWISH'") while every other mode converts.
"""

import json
import re

import numpy as np
import pytest

from workbench.cli import main
from workbench.errors import UnsupportedError
from workbench.qtyping import Mode, QuantConfig, VariantResult
from workbench.session import Session

INT16 = QuantConfig(mode=Mode.INT16X8)
REASON = "op HARD_SWISH (layer swish) has no int16x8 kernel"


def _hard_swish_model():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = keras.layers.Activation("hard_swish", name="swish")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name="hard_swish")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.random((60, 8, 8, 3), dtype=np.float32), rng.integers(0, 3, 60)


@pytest.fixture(scope="module")
def session(data):
    return Session(_hard_swish_model(), data)


def test_refused_conversion_is_a_result_and_the_rest_is_measured(session):
    results = session.compare([QuantConfig(mode=Mode.INT8), INT16])
    assert [r.config.mode for r in results] == [Mode.FLOAT32, Mode.INT8, Mode.INT16X8]
    baseline, int8, int16 = results
    assert int8.accuracy is not None and int8.size_bytes > 0 and not int8.unavailable
    assert [u.measurement for u in int16.unavailable] == ["conversion"]
    for measurement in ("conversion", "evaluation", "latency", "layer errors"):
        assert REASON in int16.missing(measurement).reason
    assert int16.accuracy is None and int16.size_bytes == 0 and np.isnan(int16.size_ratio)
    record = json.loads(json.dumps(int16.to_dict(), allow_nan=False))  # strict JSON
    assert record["size_ratio"] is None and REASON in record["unavailable"]["conversion"]
    assert VariantResult.from_dict(record).unavailable == int16.unavailable
    assert session.evaluate(INT16, layers=True).layer_errors == ()
    assert [p.samples for p in session.evaluate_progressively(INT16)] == [0]


def test_the_variant_itself_raises_the_one_line_error_once_converted(session):
    session.evaluate(INT16)
    conversions = session.stats.conversions
    with pytest.raises(UnsupportedError, match=re.escape(REASON)):
        session.variant(INT16)
    assert session.stats.conversions == conversions


def test_board_and_table_cells_say_unavailable(session):
    from workbench.display import Comparison
    from workbench.widgets.html import board_cells, board_table

    refused = session.evaluate(INT16)
    assert set(board_cells(refused).values()) == {"unavailable"}
    table = board_table([refused], current_key=INT16.key)
    assert "conversion unavailable: " in table and "HARD_SWISH" in table
    assert "unavailable" in Comparison([refused])._repr_html_()


def test_compare_command_prints_the_row_and_writes_the_others(tmp_path, data, capsys):
    model, npz = tmp_path / "swish.keras", tmp_path / "data.npz"
    out, saved = tmp_path / "out.json", tmp_path / "saved"
    _hard_swish_model().save(model)
    np.savez(npz, x=data[0], y=data[1])
    argv = ["compare", str(model), "--data", str(npz), "--modes", "int8,int16x8"]
    assert main([*argv, "--json", str(out), "--save-dir", str(saved)]) == 0
    printed = capsys.readouterr().out
    int16 = next(line for line in printed.splitlines() if line.startswith("int16x8"))
    assert int16.count("unavailable") == 6  # size, ratio, accuracy, drop, agreement, latency
    note = next(line for line in printed.splitlines() if "conversion unavailable" in line)
    assert note.startswith("int16x8 · per-channel: conversion unavailable: ") and REASON in note
    records = {r["label"]: r for r in json.loads(out.read_text())}
    assert REASON in records["int16x8 · per-channel"]["unavailable"]["conversion"]
    assert records["int8 · per-channel"]["accuracy"] is not None
    assert len(list(saved.glob("*.tflite"))) == 2  # float32 and int8: no file for int16x8


def test_dashboard_shows_the_refused_variant_as_an_unavailable_row(session):
    from workbench.widgets import Workbench
    from workbench.widgets.html import BOARD_COLUMNS
    from workbench.widgets.tasks import TaskState

    app = Workbench(session)
    try:
        assert app.wait(300), app.state.status
        app.state.config = INT16
        assert app.wait(300), app.state.status
        assert app.state.status.state is TaskState.DONE, app.state.status
        assert app.state.result.missing("conversion") and app.state.summary is None
        table = app.board.table.value
        row = table.split('data-role="current"')[1].split("</tr>")[0]
        assert row.count(">unavailable</td>") == len(BOARD_COLUMNS)
        assert "conversion unavailable: " in table and REASON in table
        assert app.state.baseline.accuracy is not None
    finally:
        app.close(timeout=300)
