"""Evaluation and per-layer error on real conversions of the digits_cnn demo model."""

import numpy as np
import pytest

from workbench.datasets.base import Split
from workbench.engine.calibration import Calibration
from workbench.engine.evaluation import evaluate, measure_latency, run_tflite
from workbench.engine.layer_error import layer_errors
from workbench.engine.quiet import silenced
from workbench.engine.routes import convert, float_tflite
from workbench.errors import DataError, ModelFileError
from workbench.qtyping import Granularity, IOType, Mode, QuantConfig, Route

LAYERS = ["conv1", "conv2", "dense", "classifier"]


@pytest.fixture(scope="module")
def files(digits_model, digits):
    calibration = Calibration(digits.calibration.x, digits.fingerprint)

    def make(**fields):
        return convert(digits_model, QuantConfig(**fields), calibration)

    return {
        "float": float_tflite(digits_model),
        "int8": make(mode=Mode.INT8),
        "int8_io": make(mode=Mode.INT8, io_type=IOType.INT8),
        "uint8_io": make(mode=Mode.INT8, io_type=IOType.UINT8),
        "per_tensor": make(mode=Mode.INT8, granularity=Granularity.PER_TENSOR),
        "dynamic": make(mode=Mode.DYNAMIC),
        "litert_int8": make(route=Route.LITERT, mode=Mode.INT8),
    }


@pytest.fixture(scope="module")
def reference(digits_model, digits):
    return np.asarray(digits_model.keras_model(digits.test.x), dtype=np.float32)


@pytest.mark.parametrize("name", ["float", "int8", "uint8_io", "dynamic"])
def test_batched_equals_per_sample(files, digits, name):
    x = digits.test.x[:45]
    batched = run_tflite(files[name], x, batch_size=16)  # 16, 16 and a last batch of 13
    single = np.concatenate([run_tflite(files[name], row[None], batch_size=1) for row in x])
    assert batched.dtype == np.float32 and batched.shape == (45, 10)
    np.testing.assert_array_equal(batched, single)


@pytest.mark.parametrize(("name", "runners"), [("int8", 1), ("float", 1), ("dynamic", 2)])
def test_reference_kernel_models_share_the_samples_out(files, digits, name, runners):
    """Delegated models get one multi-threaded interpreter; hybrid ones one per core."""
    from workbench.engine.evaluation import BatchRunner, ParallelRunner

    runner = ParallelRunner(files[name], workers=2)
    assert len(runner.runners) == runners
    x = digits.test.x
    np.testing.assert_array_equal(runner.run(x, 64)[0], BatchRunner(files[name]).run(x, 64)[0])


@pytest.mark.parametrize("name", ["int8_io", "uint8_io"])
def test_integer_io_is_quantized_like_the_float_io_model(files, digits, name):
    """The float-I/O int8 file quantizes its input in a QUANTIZE op; our encoding must match."""
    x = digits.test.x
    inside = run_tflite(files["int8"], x)
    outside = run_tflite(files[name], x)
    step = 1 / 256  # the softmax output scale
    assert np.max(np.abs(inside - outside)) <= step + 1e-6
    assert np.mean(np.argmax(inside, 1) == np.argmax(outside, 1)) >= 0.99


def test_evaluate_float_and_int8(files, digits, reference):
    keras_accuracy = float(np.mean(np.argmax(reference, 1) == digits.test.y))
    float_scores = evaluate(files["float"], digits.test, reference)
    int8_scores = evaluate(files["int8"], digits.test, reference)
    assert float_scores.accuracy == pytest.approx(keras_accuracy, abs=1e-9)
    assert float_scores.agreement == 1.0 and float_scores.snr_db > 60
    assert float_scores.cosine == pytest.approx(1.0, abs=1e-6)
    assert int8_scores.accuracy > 0.9 and int8_scores.agreement > 0.95
    assert 10 < int8_scores.snr_db < float_scores.snr_db
    unlabelled = evaluate(files["int8"], Split(digits.test.x), reference)
    assert unlabelled.accuracy is None and unlabelled.agreement == int8_scores.agreement


def test_latency_and_bad_input(files, digits):
    latency = measure_latency(files["int8"], digits.test.x[:1], repeats=20, threads=1)
    assert latency.median_ms > 0 and latency.spread_ms >= 0 and latency.threads == 1
    with pytest.raises(DataError, match="x: samples have shape"):
        run_tflite(files["float"], np.zeros((3, 4, 4, 1), np.float32))
    with pytest.raises(ModelFileError, match="tflite"):
        run_tflite(b"TFL3 but not really a model", digits.test.x[:2])


def test_latency_stops_early_only_for_slow_models(files, digits):
    """All repeats for a fast model; past the time budget, at least MIN_REPEATS."""
    from workbench.engine.evaluation import MIN_REPEATS, latency_times

    assert len(latency_times(files["int8"], digits.test.x[:1], repeats=30)) == 30
    short = latency_times(files["int8"], digits.test.x[:1], repeats=30, budget_s=0.0)
    assert len(short) == MIN_REPEATS and (short > 0).all()


def _by_layer(errors):
    return {error.layer: error for error in errors}


def test_layer_errors_per_channel_and_per_tensor(files, digits):
    x = digits.test.x[:100]
    channel = _by_layer(layer_errors(files["float"], files["int8"], x, LAYERS))
    tensor = _by_layer(layer_errors(files["float"], files["per_tensor"], x, LAYERS))
    assert list(channel) == LAYERS and list(tensor) == LAYERS
    first = channel["conv1"]
    assert first.tensor and first.scale > 0 and first.rmse > 0
    assert 0.1 < first.rmse_per_scale < 1.0  # one layer of rounding: near 1/sqrt(12) = 0.29
    assert all(0 < e.rmse_per_scale < 20 for e in channel.values())
    assert any(tensor[name].rmse_per_scale > channel[name].rmse_per_scale for name in LAYERS)


def test_layer_errors_other_routes_and_modes(files, digits):
    x = digits.test.x[:50]
    litert = _by_layer(layer_errors(files["float"], files["litert_int8"], x, LAYERS))
    assert set(litert) == set(LAYERS) and all(e.scale > 0 for e in litert.values())
    dynamic = layer_errors(files["float"], files["dynamic"], x, LAYERS)
    assert dynamic and all(e.scale == 0.0 and e.rmse_per_scale == 0.0 for e in dynamic)
    assert all(e.rmse < 0.5 for e in dynamic)
    bare = layer_errors(files["float"], files["int8"], x, [])
    assert len(bare) >= len(LAYERS) and all(e.layer == e.tensor for e in bare)


def test_fixed_batch_file_is_run_in_its_batch():
    """A .tflite exported with batch 1 fixed (no -1 in its signature) cannot be resized."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    kernel = tf.constant(rng.normal(size=(3, 3, 1, 4)).astype(np.float32))
    weights = tf.constant(rng.normal(size=(256, 3)).astype(np.float32) * 0.1)

    @tf.function(input_signature=[tf.TensorSpec([1, 8, 8, 1], tf.float32)])
    def model(x):
        hidden = tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME"))
        return tf.nn.softmax(tf.matmul(tf.reshape(hidden, [1, 256]), weights))

    x = rng.random((10, 8, 8, 1)).astype(np.float32)

    def convert(quantize):
        converter = tf.lite.TFLiteConverter.from_concrete_functions(
            [model.get_concrete_function()], model
        )
        if quantize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([row[None]] for row in x)
        with silenced():
            return converter.convert()

    data, quantized = convert(False), convert(True)
    expected = np.concatenate([model(x[i : i + 1]).numpy() for i in range(len(x))])
    np.testing.assert_allclose(run_tflite(data, x, batch_size=4), expected, atol=1e-6)
    assert measure_latency(data, x[:1], repeats=3).median_ms > 0
    errors = layer_errors(data, quantized, x, [])
    assert errors and all(e.scale > 0 and 0 < e.rmse_per_scale < 3 for e in errors)


def test_layer_errors_are_each_layers_own(files, digits):
    """Like the QuantizationDebugger: a layer is compared on the quantized run's own inputs, so
    int8 max-pooling and reshaping add nothing (float32 rounding aside), whatever error arrives
    before them."""
    x = digits.test.x[:50]
    per_op = {
        e.layer.rsplit("/", 1)[-1]: e for e in layer_errors(files["float"], files["int8"], x, [])
    }
    assert per_op["MaxPool2d"].rmse_per_scale < 1e-4 and per_op["Reshape"].rmse_per_scale < 1e-4
    others = [e for name, e in per_op.items() if name not in ("MaxPool2d", "Reshape")]
    assert others and all(e.rmse_per_scale > 0.1 for e in others)
