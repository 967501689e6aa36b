"""Models with two inputs are converted, calibrated and measured (Keras on both routes, a
`.tflite` with two inputs on the LiteRT route).

The model: an image branch (Conv2D) and a vector branch (Dense) concatenated into a softmax
head. Its Keras inputs are ("alpha", "zeta") but the converted `.tflite` takes them as ("zeta",
"alpha"), so data is matched to a file's inputs by name. Data is one array per input, a list in
the model's input order or a dict by input name; the CLI reads an `.npz` with one array per
input name.
"""

import json
import re

import numpy as np
import pytest

from workbench.cli import main
from workbench.errors import DataError
from workbench.qtyping import Mode, QuantConfig, Route
from workbench.session import Session

RNG = np.random.default_rng(0)
COUNT = 160
VECTORS = RNG.random((COUNT, 6), dtype=np.float32)
IMAGES = RNG.random((COUNT, 4, 4, 2), dtype=np.float32)
VARIANTS = [
    QuantConfig(mode=Mode.INT8),
    QuantConfig(mode=Mode.INT16X8),
    QuantConfig(route=Route.LITERT, mode=Mode.INT8),
]


def _two_inputs(outputs: str = "scores"):
    import keras

    keras.utils.set_random_seed(0)
    image, vector = keras.Input((4, 4, 2), name="alpha"), keras.Input((6,), name="zeta")
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(image)
    side = keras.layers.Dense(8, activation="relu", name="side")(vector)
    x = keras.layers.Concatenate()([keras.layers.Flatten()(x), side])
    scores = keras.layers.Dense(3, activation="softmax", name="scores")(x)
    if outputs == "scores":
        return keras.Model([image, vector], scores, name="two_inputs")
    value = keras.layers.Dense(2, name="value")(x)
    return keras.Model([image, vector], [scores, value], name="two_in_two_out")


@pytest.fixture(scope="module")
def model():
    return _two_inputs()


@pytest.fixture(scope="module")
def labels(model):
    return np.argmax(model.predict([IMAGES, VECTORS], verbose=0), axis=1)  # float is right


@pytest.fixture(scope="module")
def session(model, labels):
    return Session(model, ([IMAGES, VECTORS], labels))


def test_two_inputs_compare_on_both_routes(session):
    from workbench.engine.evaluation import model_inputs

    keras_order = [tensor.name for tensor in session.model.keras_model.inputs]
    file_order = [name for name, _ in model_inputs(session.float_bytes)]
    assert keras_order == ["alpha", "zeta"] and file_order == ["zeta", "alpha"]
    results = session.compare(VARIANTS)
    baseline = results[0]
    assert baseline.config.mode is Mode.FLOAT32 and len(results) == 4
    assert baseline.accuracy == 1.0 and baseline.agreement == 1.0
    for result in results[1:]:
        assert not result.unavailable, result.unavailable
        assert result.accuracy_estimate is not None and result.drop_estimate is not None
        assert result.samples == len(session.data.test) and result.snr_db > 10
        (scores,) = result.outputs
        assert scores.classes and 0.9 < scores.cosine <= 1 and scores.max_abs_error > 0
        assert result.latency_ms > 0
    partial = list(session.evaluate_progressively(QuantConfig(mode=Mode.DYNAMIC)))
    assert partial[0].samples == 32 and partial[-1].samples == len(session.data.test)


def test_inputs_by_name_equal_inputs_in_order(session, model, labels):
    by_name = Session(model, ({"alpha": IMAGES, "zeta": VECTORS}, labels))
    assert by_name.data.fingerprint == session.data.fingerprint
    config = QuantConfig(mode=Mode.INT8)
    np.testing.assert_array_equal(by_name.outputs(config), session.outputs(config))
    assert by_name.evaluate(config).accuracy == session.evaluate(config).accuracy


def test_inputs_in_the_wrong_order_are_a_one_line_error(model, labels):
    with pytest.raises(DataError, match=re.escape("x (alpha): samples have shape (6,)")):
        Session(model, ([VECTORS, IMAGES], labels))
    with pytest.raises(DataError, match="no array for model input"):
        Session(model, ({"alpha": IMAGES}, labels))
    with pytest.raises(DataError, match="give \\(xs, y\\) or xs"):
        Session(model, IMAGES)


def test_what_needs_one_input_says_so_and_the_rest_is_measured(session):
    result = session.evaluate(QuantConfig(mode=Mode.INT8), layers=True)
    assert result.layer_errors == () and result.accuracy is not None
    assert "one model input, not 2" in result.missing("layer errors").reason
    inspection = session.inspect()
    assert inspection.weights and "one model input, not 2" in inspection.message


def test_two_outputs_are_measured_each(labels):
    session = Session(_two_inputs("two"), [IMAGES, VECTORS])  # unlabelled
    baseline, int8 = session.compare([QuantConfig(route=Route.LITERT, mode=Mode.INT8)])
    assert sorted(o.shape for o in int8.outputs) == [(2,), (3,)]
    assert all(o.snr_db > 10 and o.max_abs_error > 0 for o in int8.outputs)
    assert int8.accuracy is None and all(o.snr_db == np.inf for o in baseline.outputs)


def test_compare_command_reads_one_array_per_input_name(tmp_path, model, labels, capsys):
    path, npz, out = tmp_path / "two.keras", tmp_path / "two.npz", tmp_path / "out.json"
    model.save(path)
    np.savez(npz, zeta=VECTORS, alpha=IMAGES, y=labels)
    argv = ["compare", str(path), "--data", str(npz), "--modes", "int8", "--route", "litert"]
    assert main([*argv, "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "int8 · per-channel · litert" in printed
    records = json.loads(out.read_text())
    assert [r["label"] for r in records] == ["float32 · litert", "int8 · per-channel · litert"]
    assert records[1]["accuracy"] is not None and records[1]["snr_db"] > 10


def test_a_two_input_tflite_compares_on_the_litert_route(model, labels):
    import tensorflow as tf

    from workbench.engine.quiet import silenced

    with silenced():
        tflite = bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    session = Session(tflite, ([VECTORS, IMAGES], labels))  # in the file's order
    assert Session(tflite, ({"alpha": IMAGES, "zeta": VECTORS}, labels)).data.fingerprint == (
        session.data.fingerprint
    )
    baseline, int8 = session.compare([QuantConfig(route=Route.LITERT, mode=Mode.INT8)])
    assert baseline.accuracy == 1.0 and int8.accuracy is not None and int8.snr_db > 10


def test_the_dashboard_measures_a_two_input_model(session):
    from workbench.widgets import Workbench
    from workbench.widgets.tasks import TaskState

    app = Workbench(session)
    try:
        assert app.wait(300), app.state.status
        assert app.state.status.state is TaskState.DONE, app.state.status
        assert app.state.result.accuracy_estimate is not None and not app.state.partial
        assert 'data-role="current"' in app.board.table.value
        assert "one model input, not 2" in app.state.inspection.message
    finally:
        app.close(timeout=300)
