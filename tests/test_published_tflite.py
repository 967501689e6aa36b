"""Float `.tflite` files as other tools publish them compare cleanly.

Each file is made here, in one of the shapes published on-device models come in: float16
weights behind DEQUANTIZE ops, no signature, two outputs (class scores and landmarks), and a
regression head. They are quantized on the LiteRT route and measured by agreement per output.
"""

import json

import numpy as np
import pytest

from workbench.engine.evaluation import run_outputs
from workbench.engine.quiet import silenced
from workbench.qtyping import Mode, QuantConfig, Route, VariantResult
from workbench.session import Session
from workbench.tflite_edit import expand_float16, float32_tflite, pack, unpack
from workbench.tflite_file import read_tflite

RNG = np.random.default_rng(0)
X = RNG.random((48, 8, 8, 3), dtype=np.float32)
LABELS = RNG.integers(0, 4, 48)
VARIANTS = [QuantConfig(route=Route.LITERT, mode=mode) for mode in (Mode.DYNAMIC, Mode.INT8)]


def _trunk(keras):
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu", name="dw")(x)
    return inputs, keras.layers.GlobalAveragePooling2D()(x)


def _convert(model, float16: bool = False) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if float16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    with silenced():
        return bytes(converter.convert())


@pytest.fixture(scope="module")
def files():
    import keras

    keras.utils.set_random_seed(0)
    inputs, features = _trunk(keras)
    scores = keras.layers.Dense(4, activation="softmax", name="scores")(features)
    landmarks = keras.layers.Dense(6, name="landmarks")(features)
    classifier = keras.Model(inputs, scores)
    two_heads = keras.Model(inputs, [scores, landmarks])
    regression = keras.Model(inputs, keras.layers.Dense(1, name="value")(features))
    unsigned = unpack(_convert(classifier))
    unsigned.signatureDefs = None
    return {
        "float16": _convert(classifier, float16=True),
        "unsigned": pack(unsigned),
        "two_outputs": _convert(two_heads),
        "regression": _convert(regression),
    }


def test_float16_weights_expand_to_float32_exactly(files):
    published = files["float16"]
    model = read_tflite(published)
    assert "float16" in {t.dtype for t in model.tensors if t.constant}
    expanded = expand_float16(published)
    after = read_tflite(expanded)
    assert {t.dtype for t in after.tensors if t.constant and t.nbytes} <= {"float32", "int32"}
    assert "DEQUANTIZE" not in {op.opcode for op in after.ops}
    np.testing.assert_array_equal(run_outputs(published, X)[0], run_outputs(expanded, X)[0])
    plain = files["unsigned"]
    assert (
        expand_float16(plain) == plain
        and float32_tflite(files["two_outputs"]) == files["two_outputs"]
    )


@pytest.mark.parametrize("name", ["float16", "unsigned"])
def test_published_classifier_compares_cleanly(files, name):
    session = Session(files[name], (X, LABELS))
    results = session.compare(VARIANTS)
    assert [r.config.mode for r in results] == [Mode.FLOAT32, Mode.DYNAMIC, Mode.INT8]
    baseline, dynamic, int8 = results
    assert baseline.accuracy is not None and baseline.agreement == 1.0
    assert int8.snr_db > 10 and not int8.unavailable
    weights = {
        t.dtype for t in read_tflite(session.variant(int8.config).tflite).tensors if t.constant
    }
    assert "int8" in weights and "float16" not in weights
    assert dynamic.outputs[0].classes and dynamic.outputs[0].cosine > 0.99


def test_two_outputs_are_measured_each(files):
    session = Session(files["two_outputs"], X)  # unlabelled, as published models come
    baseline, int8 = session.compare([QuantConfig(route=Route.LITERT, mode=Mode.INT8)])
    assert [o.shape for o in int8.outputs] in ([(4,), (6,)], [(6,), (4,)])
    by_shape = {o.shape: o for o in int8.outputs}
    assert by_shape[(4,)].classes and not by_shape[(6,)].classes
    assert all(o.snr_db > 10 and 0.9 < o.cosine <= 1 and o.max_abs_error > 0 for o in int8.outputs)
    assert all(o.snr_db == np.inf for o in baseline.outputs)
    assert int8.accuracy is None
    record = json.loads(json.dumps(baseline.to_dict(), allow_nan=False))
    assert [o["snr_db"] for o in record["outputs"]] == [None, None]  # identical: infinite SNR
    assert VariantResult.from_dict(int8.to_dict()).outputs == int8.outputs


def test_regression_head_reports_agreement_not_accuracy(files):
    session = Session(files["regression"], (X, LABELS))
    baseline, int8 = session.compare([QuantConfig(route=Route.LITERT, mode=Mode.INT8)])
    for result in (baseline, int8):
        assert result.accuracy is None and result.accuracy_drop is None
        assert result.agreement is None
    (value,) = int8.outputs
    assert value.shape == (1,) and not value.classes and value.snr_db > 10


def test_a_tflite_file_takes_the_litert_route_unless_told(files, tmp_path, capsys):
    """The TFLite converter takes Keras models and SavedModels only: for a .tflite, compare,
    convert, the standard set and the dashboard default to the LiteRT Quantizer."""
    from workbench.cli import main
    from workbench.widgets import Workbench

    model, data = tmp_path / "published.tflite", tmp_path / "data.npz"
    model.write_bytes(files["float16"])
    np.savez(data, x=X, y=LABELS)
    out = tmp_path / "rows.json"
    argv = [str(model), "--data", str(data), "-q"]
    assert main(["compare", *argv, "--modes", "int8", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [(r["route"], r["mode"]) for r in rows] == [
        ("litert", "float32"),
        ("litert", "int8"),
    ]
    assert all(r["accuracy"] is not None for r in rows)
    assert main(["convert", *argv, "-o", str(tmp_path / "int8.tflite")]) == 0
    assert "int8 · per-channel · litert" in capsys.readouterr().out
    published = Session(files["float16"], (X, LABELS))
    assert {c.route for c in published.standard_configs()} == {Route.LITERT}
    quantized = tmp_path / "quantized.tflite"
    quantized.write_bytes(published.variant(QuantConfig(route=Route.LITERT)).tflite)
    assert main(["compare", str(quantized), "--data", str(data), "--modes", "int8", "-q"]) == 0
    heading = capsys.readouterr().out.splitlines()[0]
    assert heading.startswith("quantized.tflite (already quantized, int8 weights: the float32")
    app = Workbench(model, str(data))
    try:
        assert app.wait(120)
        assert app.state.config.route is Route.LITERT and app.state.result is not None
        assert app.state.result.accuracy is not None
    finally:
        app.close()
