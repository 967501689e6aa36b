"""Reading .tflite files: names back to Keras layers, dtypes and conversions per layer."""

import numpy as np
import pytest

from workbench.engine.quiet import silenced
from workbench.errors import ModelFileError
from workbench.tflite_file import layer_of, op_layers, quantization_summary, read_tflite


def _convert(keras_model, *, representative=None, **settings) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    if representative is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([row[None]] for row in representative)
    for name, value in settings.items():
        setattr(converter, name, value)
    with silenced():
        return converter.convert()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("digits_cnn_1/conv1_1/Relu;digits_cnn_1/conv1_1/BiasAdd", "conv1"),
        ("sequential_1/conv2d_1/convolution", "conv2d"),  # Keras 3 scope of layer conv2d
        ("sequential_1/conv2d_1_2/convolution", "conv2d_1"),  # ... and of layer conv2d_1
        ("sequential_1/re_lu_1/Relu;sequential_1/conv2d_1_2/convolution", "conv2d_1"),
        ("model/conv2d_10/BiasAdd", "conv2d"),  # a uniquified conv2d, never conv2d_1 by prefix
        ("model/conv2d_1x/BiasAdd", None),
        ("model/conv2d/BiasAdd", "conv2d"),  # unsuffixed scopes (tf.keras SavedModels)
        ("outer_1/block1_dw_1/depthwise", "block1_dw"),
        # conv + batch norm + activation fused: the compute part names the layer
        (
            "m_1/block1_dw_relu_1/Relu6;m_1/block1_dw_bn_1/batchnorm/add_1;"
            "m_1/block1_dw_bn_1/batchnorm/mul_1;m_1/block1_dw_1/depthwise",
            "block1_dw",
        ),
        ("m_1/block1_dw_bn_1/batchnorm/mul_1;m_1/block1_dw_1/depthwise", "block1_dw"),
        ("m_1/block1_dw_relu_1/Relu6", "block1_dw_relu"),
        ("serving_default_image:0", None),
        ("tfl.quantize", None),
    ],
)
def test_layer_of(name, expected):
    layers = ["conv1", "conv2d", "conv2d_1", "block1_dw", "block1_dw_bn", "block1_dw_relu", "dense"]
    assert layer_of(name, layers) == expected


def test_layer_of_matches_real_keras_scopes():
    """Two Conv2D layers named conv2d and conv2d_1: each op is attributed by its kernel shape."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(3, 3, name="conv2d"),
            keras.layers.Conv2D(5, 3, name="conv2d_1"),
            keras.layers.ReLU(),
            keras.layers.Flatten(),
            keras.layers.Dense(4, name="dense"),
        ]
    )
    names = [layer.name for layer in model.layers if layer.weights]
    tflite = read_tflite(_convert(model))
    by_op = op_layers(tflite, names)
    found = {
        tflite.tensors[op.inputs[1]].shape[0]: by_op[op.index]
        for op in tflite.ops
        if op.opcode in ("CONV_2D", "FULLY_CONNECTED")
    }
    assert found == {3: "conv2d", 5: "conv2d_1", 4: "dense"}  # output channels -> layer


def test_read_rejects_bad_bytes():
    with pytest.raises(ModelFileError, match="TFL3"):
        read_tflite(b"not a model at all")


@pytest.fixture(scope="module")
def converted(digits_model, digits):
    model = digits_model.keras_model
    sample = digits.calibration.x[:50]
    import tensorflow as tf

    return {
        "float": _convert(model),
        "int8": _convert(model, representative=sample),
        "int8_io": _convert(
            model,
            representative=sample,
            inference_input_type=tf.int8,
            inference_output_type=tf.int8,
        ),
        "per_tensor": _convert(
            model, representative=sample, _experimental_disable_per_channel=True
        ),
        "float16": _convert(
            model,
            optimizations=[tf.lite.Optimize.DEFAULT],
            target_spec=tf.lite.TargetSpec(supported_types=[tf.float16]),
        ),
    }


def _layer_names(model):
    return [layer.name for layer in model.keras_model.layers if layer.get_weights()]


def test_read_int8_file(converted):
    model = read_tflite(converted["int8"])
    assert model.inputs[0].dtype == "float32" and model.outputs[0].dtype == "float32"
    opcodes = [op.opcode for op in model.ops]
    assert opcodes[0] == "QUANTIZE" and opcodes[-1] == "DEQUANTIZE"
    kernels = [t for t in model.tensors if t.constant and t.dtype == "int8"]
    assert kernels and all(len(t.scales) == t.shape[0] for t in kernels)
    assert all(t.zero_points == (0,) * len(t.scales) for t in kernels)
    assert sum(t.nbytes for t in model.tensors) < model.size_bytes


def test_summary_per_layer(converted, digits_model):
    names = _layer_names(digits_model)
    float_summary = quantization_summary(converted["float"], names)
    int8 = quantization_summary(converted["int8"], names)
    per_tensor = quantization_summary(converted["per_tensor"], names)
    assert [row.layer for row in int8.layers] == names
    assert {row.weight_dtype for row in float_summary.layers} == {"float32"}
    assert {(row.weight_dtype, row.activation_dtype) for row in int8.layers} == {("int8", "int8")}
    assert {row.weight_granularity for row in int8.layers} == {"per-channel"}
    assert {row.weight_granularity for row in per_tensor.layers} == {"per-tensor"}
    for before, after in zip(float_summary.layers, int8.layers, strict=True):
        assert 0.2 < after.bytes / before.bytes < 0.35  # int8 kernel, int32 bias
    assert [c.opcode for c in int8.conversions] == ["QUANTIZE", "DEQUANTIZE"]
    assert not float_summary.conversions
    assert set(int8.to_dict()) >= {"tensors", "conversions", "input_dtypes", "layers"}


def test_summary_io_and_float16(converted, digits_model):
    names = _layer_names(digits_model)
    int8_io = quantization_summary(converted["int8_io"], names)
    assert int8_io.input_dtypes == ("int8",) and int8_io.output_dtypes == ("int8",)
    assert not int8_io.conversions
    half = quantization_summary(converted["float16"], names)
    assert {row.weight_dtype for row in half.layers} == {"float16"}
    assert {row.activation_dtype for row in half.layers} == {"float32"}
    unpacked = {c.layer for c in half.conversions if c.of_constant}
    assert unpacked == set(names)
    assert np.isclose(
        sum(row.bytes for row in half.layers) + half.bytes_unattributed,
        sum(t.nbytes for t in half.tensors),
    )


def test_summary_layer_kept_float(digits_model, digits):
    """A layer kept float computes in float32 even though a QUANTIZE follows it."""
    from workbench.engine.calibration import Calibration
    from workbench.engine.routes import convert
    from workbench.qtyping import Mode, QuantConfig, Route

    calibration = Calibration(digits.calibration.x[:50], digits.fingerprint)
    config = QuantConfig(route=Route.LITERT, mode=Mode.INT8, keep_float={"dense"})
    summary = quantization_summary(
        convert(digits_model, config, calibration), _layer_names(digits_model)
    )
    rows = {row.layer: row for row in summary.layers}
    assert (rows["dense"].weight_dtype, rows["dense"].activation_dtype) == ("float32", "float32")
    assert (rows["conv2"].weight_dtype, rows["conv2"].activation_dtype) == ("int8", "int8")
    assert "dense" in {c.layer for c in summary.conversions if c.opcode == "QUANTIZE"}
