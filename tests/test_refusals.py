"""A runtime refusal (and a converter's) is a measured value, never a traceback.

The model: a depthwise layer whose outputs are tiny (kernel scaled by 1e-9) before a ReLU6.
Calibrated on the LiteRT route its output scale is so small that 6.0 in those units overflows
int32, and TFLite's reference kernels refuse to prepare it ("no_integer_overflow_from_
quantization ... DEPTHWISE_CONV_2D failed to prepare"), as node 41 of a random-init
MobileNetV2 at 224 does. XNNPACK runs the int8 model; nothing runs the int16x8 one.
"""

import json
import re

import numpy as np
import pytest

from workbench.cli import main
from workbench.errors import UnsupportedError
from workbench.qtyping import Mode, QuantConfig, Route, VariantResult
from workbench.session import Session

REFUSAL = "no_integer_overflow_from_quantization"


def _tiny_depthwise_model():
    import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu6", name="conv")(inputs)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = keras.layers.ReLU(6.0, name="dw_relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, name="fc")(x), name="tiny_depthwise")
    model.build((None, 8, 8, 3))
    kernel, bias = model.get_layer("dw").get_weights()
    model.get_layer("dw").set_weights([kernel * 1e-9, bias * 0])
    return model


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.random((64, 8, 8, 3), dtype=np.float32), rng.integers(0, 10, 64)


@pytest.fixture(scope="module")
def session(data):
    return Session(_tiny_depthwise_model(), data)


def test_refused_layer_is_unavailable_and_the_others_are_measured(session):
    result = session.evaluate(QuantConfig(route=Route.LITERT, mode=Mode.INT8), layers=True)
    assert result.accuracy is not None and result.latency_ms > 0  # XNNPACK runs it
    refused = result.missing("layer dw")
    assert (
        refused is not None and REFUSAL in refused.reason and "DEPTHWISE_CONV_2D" in refused.reason
    )
    measured = {e.layer: e for e in result.layer_errors}
    assert set(measured) == {"conv", "fc"} and measured["conv"].scale > 0
    assert result.to_dict()["unavailable"] == {"layer dw": refused.reason}
    layer, unmeasured = session.sensitivity(Route.LITERT)
    assert layer in {"conv", "fc"} and [u.measurement for u in unmeasured] == ["layer dw"]
    assert session.most_sensitive_layer(Route.LITERT) == layer


def test_refused_model_is_a_result_with_unavailable_numbers(session):
    result = session.evaluate(QuantConfig(route=Route.LITERT, mode=Mode.INT16X8), layers=True)
    for measurement in ("evaluation", "latency", "layer errors"):
        assert REFUSAL in result.missing(measurement).reason
    assert result.accuracy is None and result.agreement is None and np.isnan(result.latency_ms)
    assert result.size_bytes > 0 and not result.layer_errors
    record = json.loads(json.dumps(result.to_dict(), allow_nan=False))  # strict JSON
    assert record["latency_ms"] is None and set(record["unavailable"]) == {
        "evaluation",
        "latency",
        "layer errors",
    }
    again = VariantResult.from_dict(record)
    assert again.unavailable == result.unavailable and np.isnan(again.latency_ms)


def test_compare_prints_unavailable_cells_and_notes(tmp_path, data, capsys):
    model, npz, out = tmp_path / "tiny.keras", tmp_path / "data.npz", tmp_path / "out.json"
    _tiny_depthwise_model().save(model)
    np.savez(npz, x=data[0], y=data[1])
    argv = ["compare", str(model), "--data", str(npz), "--route", "litert", "--json", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    int16 = next(line for line in printed.splitlines() if line.startswith("int16x8"))
    assert int16.count("unavailable") == 4  # accuracy, drop, agreement, latency
    assert "int8 · per-channel · litert: layer dw unavailable: " in printed
    assert "most sensitive layer (litert): " in printed and "1 could not be" in printed
    records = {r["label"]: r for r in json.loads(out.read_text())}
    assert REFUSAL in records["int16x8 · per-channel · litert"]["unavailable"]["evaluation"]
    kept = [label for label in records if "layer float" in label]
    assert len(kept) == 1 and records[kept[0]]["accuracy"] is not None


def test_board_cells_say_unavailable(session):
    from workbench.widgets.html import board_cells

    refused = session.evaluate(QuantConfig(route=Route.LITERT, mode=Mode.INT16X8))
    cells = board_cells(refused)
    assert [cells[c] for c in ("accuracy", "agreement", "latency")] == ["unavailable"] * 3
    assert cells["size"] != "unavailable"
    from workbench.display import Comparison

    shown = Comparison([refused])
    assert "unavailable" in shown._repr_html_()
    assert REFUSAL in shown.to_frame().loc[refused.label, "unavailable"]


def test_inspect_of_a_refused_tflite_still_prints_the_rest(session, data, tmp_path, capsys):
    path, npz, out = tmp_path / "int16.tflite", tmp_path / "data.npz", tmp_path / "out.json"
    path.write_bytes(session.variant(QuantConfig(route=Route.LITERT, mode=Mode.INT16X8)).tflite)
    np.savez(npz, x=data[0], y=data[1])
    assert main(["inspect", str(path), "--data", str(npz), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "DEPTHWISE_CONV_2D" in printed and "activation ranges unavailable: " in printed
    record = json.loads(out.read_text())
    assert REFUSAL in record["activations"]["unavailable"] and record["weights"]
    assert not record["runtime"]["checked"] and REFUSAL in record["runtime"]["refusal"]


# --- a conversion refused: the converter has no int16x8 kernel for HARD_SWISH (MobileNetV3's
# activation), so int16x8 is that variant's result, "conversion unavailable", and every other
# variant is still measured.

INT16 = QuantConfig(mode=Mode.INT16X8)
REASON = "op HARD_SWISH (layer swish) has no int16x8 kernel"


def _hard_swish_model():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = keras.layers.Activation("hard_swish", name="swish")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs, name="hard_swish")


@pytest.fixture(scope="module")
def swish(data):
    return Session(_hard_swish_model(), data)


def test_refused_conversion_is_a_result_and_the_rest_is_measured(swish):
    results = swish.compare([QuantConfig(mode=Mode.INT8), INT16])
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
    assert swish.evaluate(INT16, layers=True).layer_errors == ()
    assert [p.samples for p in swish.evaluate_progressively(INT16)] == [0]


def test_the_variant_itself_raises_the_one_line_error_once_converted(swish):
    swish.evaluate(INT16)
    conversions = swish.stats.conversions
    with pytest.raises(UnsupportedError, match=re.escape(REASON)):
        swish.variant(INT16)
    assert swish.stats.conversions == conversions


def test_board_and_table_cells_of_a_refused_conversion(swish):
    from workbench.display import Comparison
    from workbench.widgets.html import board_cells, board_table

    refused = swish.evaluate(INT16)
    assert set(board_cells(refused).values()) == {"unavailable"}
    table = board_table([refused], current_key=INT16.key)
    assert "conversion unavailable: " in table and "HARD_SWISH" in table
    assert "unavailable" in Comparison([refused])._repr_html_()


def test_compare_prints_a_refused_conversion_and_writes_the_others(tmp_path, data, capsys):
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


def test_dashboard_shows_the_refused_variant_as_an_unavailable_row(swish):
    from workbench.widgets import Workbench
    from workbench.widgets.html import BOARD_COLUMNS
    from workbench.widgets.tasks import TaskState

    app = Workbench(swish)
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


@pytest.mark.parametrize("route", [Route.CONVERTER, Route.LITERT])
def test_ctrl_c_inside_tensorflow_is_not_a_refusal(data, route):
    """Ctrl-C landing inside TensorFlow's C code reaches Python as a `SystemError` caused by
    the `KeyboardInterrupt` (as in `nest.flatten` while tracing); the conversion stops there
    instead of becoming a refused row."""
    import keras

    interrupting = []

    def identity(x):
        if interrupting:
            raise SystemError("returned a result with an exception set") from KeyboardInterrupt()
        return x

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Lambda(identity, name="interrupted")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10)(x), name="interrupted_model")
    session = Session(model, data)
    interrupting.append(True)
    with pytest.raises(KeyboardInterrupt):
        session.compare([QuantConfig(route=route, mode=Mode.INT8)])
