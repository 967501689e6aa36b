"""Inspection tables on the demo models and on real converted .tflite files."""

import json

import numpy as np
import pytest

from workbench import affine, inspection
from workbench.engine.quiet import silenced
from workbench.errors import DataError
from workbench.folding import quantizable_kernels
from workbench.inspection.stats import StreamingHistogram, channel_stats, tensor_stats
from workbench.inspection.tflite import tflite_activation_ranges, tflite_layer_table

pytestmark = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs")


def _convert(keras_model, x, mode):
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    else:
        converter.representative_dataset = lambda: ([s[None]] for s in x[:32])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with silenced():
        return converter.convert()


@pytest.fixture(scope="module")
def digits_tflite(digits_model, digits):
    return {
        mode: _convert(digits_model.keras_model, digits.calibration.x, mode)
        for mode in ("float16", "int8")
    }


def test_layer_table_counts_params_and_folded_batch_norms(digits_model, shapes_model):
    rows = inspection.layer_table(digits_model)
    assert sum(r.params for r in rows) == digits_model.keras_model.count_params()
    conv1 = next(r for r in rows if r.name == "conv1")
    assert (conv1.params, conv1.bytes_float32, conv1.bytes_float16) == (160, 640, 320)
    assert conv1.bytes_int8 == 144 + 4 * 16  # int8 kernel, int32 bias
    rows = {r.name: r for r in inspection.layer_table(shapes_model)}
    assert rows["stem_bn"].folded_into == "stem" and rows["stem_bn"].bytes_int8 == 0
    assert rows["stem"].bytes_int8 == 864 + 4 * 32  # the folded BatchNorm brings a bias
    records = json.loads(json.dumps([r.to_dict() for r in rows.values()], allow_nan=False))
    assert [record["name"] for record in records] == list(rows)


def test_weight_stats_are_of_the_folded_kernels_per_tensor_and_per_channel(shapes_model):
    stats = {s.layer: s for s in inspection.weight_stats(shapes_model)}
    kernels = {k.layer: k for k in quantizable_kernels(shapes_model)}
    assert stats.keys() == kernels.keys()
    dw = stats["block1_dw"]
    kernel = kernels["block1_dw"].kernel
    assert dw.folded_from == "block1_dw_bn" and dw.channel_axis == 3
    assert len(dw.per_channel) == kernel.shape[3] == 32
    assert dw.per_tensor.min == float(kernel.min()) and dw.per_tensor.max == float(kernel.max())
    assert min(c.min for c in dw.per_channel) == dw.per_tensor.min
    assert dw.per_channel[5].absmax == float(np.abs(kernel[..., 5]).max())
    assert sum(dw.per_tensor.histogram.counts) == kernel.size
    assert len(dw.per_tensor.histogram.edges) == 65
    # folded depthwise kernels spread channel ranges: the point of per-channel scales
    absmax = [c.absmax for c in dw.per_channel]
    assert max(absmax) / min(absmax) > 3
    record = json.loads(json.dumps(dw.to_dict()))
    assert set(record["per_tensor"]["percentiles"]) == {"0.1", "1.0", "50.0", "99.0", "99.9"}


@pytest.mark.parametrize(
    ("shape", "axis"), [((3, 3, 16, 1), 2), ((1, 1, 24, 40), -1), ((40, 7), 1), ((5, 3), 0)]
)
def test_channel_stats_equal_tensor_stats_of_each_channel(shape, axis):
    """All channels at once give exactly `tensor_stats` of each (ties, constant channels and
    values on bin edges included)."""
    rng = np.random.default_rng(3)
    values = rng.normal(size=shape).astype(np.float32)
    values[..., :1] = np.round(values[..., :1] * 2) / 2  # values on a few levels
    np.moveaxis(values, axis, 0)[0] = 0.25  # one constant channel
    slices = np.moveaxis(values, axis, 0)
    assert channel_stats(values, axis) == [tensor_stats(channel) for channel in slices]


def test_tensor_stats_percentiles_are_numpys():
    values = np.random.default_rng(0).normal(size=10_000)
    stats = tensor_stats(values)
    assert stats.percentiles[99.0] == pytest.approx(np.percentile(values, 99.0))
    assert stats.percentiles[0.1] < stats.percentiles[50.0] < stats.percentiles[99.9]


def test_streaming_histogram_grows_and_keeps_constant_memory():
    rng = np.random.default_rng(1)
    batches = [rng.normal(loc=i, scale=1 + i, size=5_000) for i in range(8)]
    stream = StreamingHistogram(fine=2048)
    for batch in batches:
        stream.update(batch)
        assert stream.counts.shape == (2048,)
    everything = np.concatenate(batches)
    stats = stream.stats()
    assert stats.count == everything.size == sum(stats.histogram.counts)
    assert stats.min == pytest.approx(everything.min()) and stats.max == pytest.approx(
        everything.max()
    )
    for q in (0.1, 1.0, 50.0, 99.0, 99.9):
        assert abs(stats.percentiles[q] - np.percentile(everything, q)) <= 2 * stream.width
    assert len(stats.histogram.counts) <= 64


def test_activation_ranges_one_streaming_pass_match_a_full_forward_pass(digits_model, digits):
    import keras

    x = digits.calibration.x
    streamed = {r.layer: r for r in inspection.activation_ranges(digits_model, x, batch_size=37)}
    model = digits_model.keras_model
    assert list(streamed)[0] == "image" and streamed["image"].type == "Input"
    probe = keras.Model(model.inputs[0], model.get_layer("conv2").output)
    exact = keras.ops.convert_to_numpy(probe(x, training=False))
    conv2 = streamed["conv2"]
    assert conv2.min == pytest.approx(float(exact.min()))
    assert conv2.max == pytest.approx(float(exact.max()))
    assert conv2.stats.count == exact.size
    step = (conv2.max - conv2.min) / 2048 * 2
    assert abs(conv2.percentiles[99.0] - np.percentile(exact, 99.0)) <= step
    records = json.loads(json.dumps([r.to_dict() for r in streamed.values()], allow_nan=False))
    assert [record["layer"] for record in records] == list(streamed)


def test_bad_activation_data_is_a_data_error(digits_model, digits):
    x = digits.calibration.x.copy()
    x[3, 2, 2, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        inspection.activation_ranges(digits_model, x)
    with pytest.raises(DataError, match="shape"):
        inspection.activation_ranges(digits_model, np.zeros((4, 32, 32, 3), np.float32))


def test_tflite_float16_weights_are_read_behind_dequantize(digits_tflite, digits_model):
    stats = inspection.weight_stats(digits_tflite["float16"])
    kernels = quantizable_kernels(digits_model)
    assert [s.dtype for s in stats] == ["float16"] * len(kernels)
    for stat, kernel in zip(stats, kernels, strict=True):
        assert stat.shape == kernel.kernel.shape
        assert stat.per_tensor.max == float(kernel.kernel.astype(np.float16).max())
    rows = inspection.layer_table(digits_tflite["float16"])
    assert "DEQUANTIZE" not in {r.type for r in rows}  # storage, shown with its conv
    conv = next(r for r in rows if r.type == "CONV_2D")
    assert conv.dtype == "float16" and conv.bytes_stored == 2 * conv.params


def test_tflite_int8_weights_dequantize_to_the_kernels(digits_tflite, digits_model):
    stats = inspection.weight_stats(digits_tflite["int8"])
    for stat, kernel in zip(stats, quantizable_kernels(digits_model), strict=True):
        assert stat.dtype == "int8" and stat.channel_axis == kernel.channel_axis
        params = affine.weight_params(kernel.kernel, kind=kernel.kind, per_channel=True)
        expected = affine.fake_quantize(kernel.kernel, params)
        assert stat.per_tensor.max == pytest.approx(float(expected.max()), rel=1e-6)
        assert [c.absmax for c in stat.per_channel] == pytest.approx(
            np.abs(expected).max(axis=tuple(range(1, expected.ndim))).tolist(), rel=1e-6
        )


def test_tflite_activation_ranges_agree_with_keras(digits_tflite, digits_model, digits):
    x = digits.calibration.x
    keras_ranges = inspection.activation_ranges(digits_model, x)
    file_ranges = inspection.activation_ranges(digits_tflite["float16"], x, batch_size=64)
    assert file_ranges[0].type == "Input"
    # the classifier's softmax output is the last range in both
    assert file_ranges[-1].max == pytest.approx(keras_ranges[-1].max, abs=1e-3)
    int8 = inspection.activation_ranges(digits_tflite["int8"], x)
    assert {r.type for r in int8} >= {"CONV_2D", "FULLY_CONNECTED"}


def test_tflite_int8_layer_table_stores_what_the_keras_table_predicts(digits_tflite, digits_model):
    predicted = {r.name: r for r in inspection.layer_table(digits_model)}
    names = [layer.name for layer in digits_model.keras_model.layers]
    rows = [r for r in tflite_layer_table(digits_tflite["int8"], names) if r.dtype == "int8"]
    assert {r.name for r in rows} == {"conv1", "conv2", "dense", "classifier"}
    for row in rows:  # int8 kernel + int32 bias, byte for byte
        assert row.bytes_stored == predicted[row.name].bytes_int8
        assert row.params == predicted[row.name].params


def test_tflite_int8_activation_ranges_follow_the_calibrated_keras_ranges(
    digits_tflite, digits_model, digits
):
    names = [layer.name for layer in digits_model.keras_model.layers]
    x = digits.calibration.x[:100]
    expected = {r.layer: r for r in inspection.activation_ranges(digits_model, x)}
    found = {
        r.layer: r for r in tflite_activation_ranges(digits_tflite["int8"], x, layer_names=names)
    }
    for name in ("conv1", "conv2", "dense"):
        assert found[name].stats.count == expected[name].stats.count
        assert found[name].min == pytest.approx(expected[name].min, abs=0.05)
        # calibrated on 32 samples: the int8 range may clip, never by more than 10 %
        assert found[name].max == pytest.approx(expected[name].max, rel=0.1)
        # the file's own quantization parameters bound what the int8 tensor can hold
        (scale,), (zero_point,) = found[name].scales, found[name].zero_points
        assert found[name].dtype == "int8"
        assert found[name].max <= (127 - zero_point) * scale * (1 + 1e-6)


def test_tflite_int4_weights_dequantize_to_the_kernels(digits_model, digits):
    from workbench.qtyping import Mode, QuantConfig, Route
    from workbench.session import Session

    config = QuantConfig(route=Route.LITERT, mode=Mode.INT4)
    data = Session(digits_model, digits).variant(config).tflite
    stats = inspection.weight_stats(data)
    kernels = quantizable_kernels(digits_model)
    assert [s.dtype for s in stats] == ["int4"] * len(kernels)
    for stat, kernel in zip(stats, kernels, strict=True):
        # symmetric per-channel int4: code 7 times the channel's scale is its absmax
        absmax = np.abs(kernel.kernel).max(axis=tuple(range(1, kernel.kernel.ndim)))
        assert [c.absmax for c in stat.per_channel] == pytest.approx(absmax.tolist(), rel=1e-6)
        assert np.float32(stat.scales) * 7 == pytest.approx(absmax, rel=1e-6)
        assert set(stat.zero_points) == {0}


def test_batch_norm_folds_in_a_sequential_model_loaded_from_file(tmp_path):
    import keras

    from workbench.folding import quantizable_kernels
    from workbench.models import load_model

    model = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            keras.layers.Conv2D(4, 3, use_bias=False, name="conv"),
            keras.layers.BatchNormalization(name="bn"),
        ]
    )
    model.save(tmp_path / "seq.keras")
    loaded = load_model(tmp_path / "seq.keras")
    loaded.keras_model.predict(np.zeros((2, 6, 6, 2), np.float32), verbose=0)
    (kernel,) = quantizable_kernels(loaded)
    assert kernel.folded_from == "bn"
