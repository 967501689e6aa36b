"""The proof: the numpy core predicts, bit for bit, the int8 weights the TFLite converter writes.

Each model (the demo models, a model of every folding pattern, and MobileNetV2 / V3-Small,
EfficientNetB0 and ResNet50 from keras.applications with random weights at 32x32) is converted
once by the real `tf.lite.TFLiteConverter` (full int8, representative
data), calibrated once and quantized per channel and per tensor by the converter's own MLIR
quantizer (exactly what `convert()` runs after calibrating). For every Conv2D, DepthwiseConv2D
and Dense layer the int8 kernel, its scales and zero points and the int32 bias read back from the
`.tflite` through the LiteRT interpreter must equal `workbench.folding` + `workbench.affine`;
a layer whose fold is not modelled must say so (and its own kernel must indeed differ).
"""

import re
import warnings

import numpy as np
import pytest

from workbench import affine
from workbench.engine.quiet import silenced
from workbench.folding import quantizable_kernels

WEIGHT_OPS = {
    "CONV_2D": "Conv2D",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2D",
    "FULLY_CONNECTED": "Dense",
}
SAMPLES = 16


def _randomise_batch_norms(model, seed):
    """Trained-looking BatchNorm statistics, so folding really changes the kernels."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            values = {
                "gamma": rng.uniform(0.2, 3.0, n),
                "beta": rng.normal(size=n),
                "moving_mean": rng.normal(size=n),
                "moving_variance": rng.uniform(0.01, 4.0, n),
            }
            for name, value in values.items():
                if getattr(layer, name, None) is not None:
                    getattr(layer, name).assign(value.astype(np.float32))
    return model


def _small_model():
    """Every folding case: conv+bias+BN, conv+activation then BN (not folded), depthwise with
    depth multiplier 2 + BN, dense + BN, plain dense."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 12, 3))
    x = layers.Conv2D(8, 3, name="conv_bias")(inputs)
    x = layers.BatchNormalization(name="conv_bias_bn")(x)
    x = layers.Conv2D(8, 3, activation="relu", name="conv_relu")(x)
    x = layers.BatchNormalization(name="after_relu_bn")(x)
    x = layers.DepthwiseConv2D(3, depth_multiplier=2, use_bias=False, name="dw")(x)
    x = layers.BatchNormalization(name="dw_bn")(x)
    x = layers.ReLU(6.0)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(12, name="dense_bn")(x)
    x = layers.BatchNormalization(name="dense_bn_bn")(x)
    outputs = layers.Dense(5, name="head")(x)
    return _randomise_batch_norms(keras.Model(inputs, outputs), seed=1)


def _fusions_model():
    """Constant ops the converter folds (or not) around layers: EfficientNet's stem (Rescaling
    through padding, then BatchNorm), a normalised input (not folded), MobileNetV3's
    squeeze-excite bias shift (``+ 3`` after a conv), multiplies and divides after layers, a
    scalar multiply before a Dense layer, and an offset before a valid conv (not modelled)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 12, 3))
    x = layers.Rescaling(1 / 255, name="stem_rescale")(inputs)
    x = layers.ZeroPadding2D(1, name="stem_pad")(x)
    x = layers.Conv2D(8, 3, use_bias=False, name="stem")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU()(x)
    x = layers.Conv2D(8, 1, name="se")(x)
    x = layers.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)
    x = layers.DepthwiseConv2D(3, name="dw_scaled")(x)
    x = x * np.linspace(0.5, 2.0, 8).astype(np.float32) - 0.25
    x = layers.ReLU()(x)
    x = layers.Conv2D(6, 3, name="halved")(x)
    x = layers.GlobalAveragePooling2D()(x / 2.0)
    x = layers.Dense(12, name="dense_shifted")(x * 0.5)
    x = layers.ReLU()(layers.Rescaling(2.0, 0.25, name="dense_rescale")(x))
    side = layers.Normalization(mean=[0.4, 0.5, 0.6], variance=[0.04, 0.09, 0.01])(inputs)
    side = layers.ZeroPadding2D(1)(side)
    side = layers.Conv2D(4, 3, strides=4, name="normalised")(side)
    offset = layers.Rescaling(1 / 127.5, -1.0, name="offset_input")(inputs)
    offset = layers.Conv2D(4, 3, strides=4, name="offset_conv")(offset)
    outputs = [
        layers.Dense(5, name="head")(x),  # no Concatenate: it would share activation scales
        layers.GlobalAveragePooling2D()(side),
        layers.GlobalAveragePooling2D()(offset),
    ]
    return _randomise_batch_norms(keras.Model(inputs, outputs), seed=3)


def _application(name):
    """A keras.applications model at 32x32 with random weights and BatchNorm statistics."""
    import keras

    keras.utils.set_random_seed(0)
    build = getattr(keras.applications, name)
    model = build(weights=None, input_shape=(32, 32, 3), classes=10)
    return _randomise_batch_norms(model, seed=2)


def _calibrated(keras_model, x):
    import tensorflow as tf

    def representative():
        for sample in x[:SAMPLES]:
            yield [sample[None].astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter._experimental_calibrate_only = True
    with silenced(), warnings.catch_warnings():  # "statistics for quantized inputs expected"
        warnings.simplefilter("ignore", UserWarning)
        return converter.convert()


def _quantized(calibrated, per_channel):
    from tensorflow.lite.python.convert import mlir_quantize

    with silenced():
        return mlir_quantize(calibrated, disable_per_channel=not per_channel)


def _layer_ops(tflite, kernels):
    """{layer: (op, tensor details, interpreter)} matched by Keras layer name and shape."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=tflite)
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    ops = [op for op in interpreter._get_ops_details() if op["op_name"] in WEIGHT_OPS]
    assert len(ops) == len(kernels)
    matched = {}
    for kernel in kernels:
        # a folded kernel may carry only the BatchNorm's name (Dense + BN does)
        layers = "|".join(re.escape(n) for n in (kernel.layer, kernel.folded_from) if n)
        pattern = re.compile(rf"({layers})(_\d+)?")

        def names(op):
            name = details[op["inputs"][1]]["name"]
            return [part for piece in name.split(";") for part in piece.split("/")]

        found = [
            op
            for op in ops
            if WEIGHT_OPS[op["op_name"]] == kernel.kind
            and tuple(details[op["inputs"][1]]["shape"]) == kernel.kernel.shape
            and any(pattern.fullmatch(part) for part in names(op))
        ]
        assert len(found) == 1, f"{kernel.layer}: {len(found)} matching ops"
        matched[kernel.layer] = found[0]
    return interpreter, details, matched


def _assert_kernel_exact(interpreter, details, op, kernel, per_channel, bias_dtype):
    weight = details[op["inputs"][1]]
    written = weight["quantization_parameters"]
    assert weight["dtype"] == np.int8, kernel.layer
    input_scale = details[op["inputs"][0]]["quantization_parameters"]["scales"][0]
    params = affine.weight_params(
        kernel.kernel,
        kind=kernel.kind,
        per_channel=per_channel,
        bias=kernel.bias if op["inputs"][2] >= 0 else None,
        input_scale=input_scale,
    )
    expected_axis = kernel.channel_axis if per_channel else 0
    assert written["quantized_dimension"] == expected_axis, kernel.layer
    np.testing.assert_array_equal(
        written["scales"], params.stored_scale.reshape(-1), err_msg=kernel.layer
    )
    np.testing.assert_array_equal(
        written["zero_points"], params.zero_point.reshape(-1), err_msg=kernel.layer
    )
    np.testing.assert_array_equal(
        interpreter.get_tensor(weight["index"]),
        affine.quantize(kernel.kernel, params).astype(np.int8),
        err_msg=f"{kernel.layer}: int8 kernel",
    )
    if op["inputs"][2] < 0:
        return
    bias = details[op["inputs"][2]]
    bias_params = affine.bias_params(input_scale, params, dtype=bias_dtype)
    assert bias["dtype"] == np.dtype(bias_dtype), kernel.layer
    np.testing.assert_array_equal(
        bias["quantization_parameters"]["scales"],
        bias_params.stored_scale.reshape(-1),
        err_msg=kernel.layer,
    )
    np.testing.assert_array_equal(
        interpreter.get_tensor(bias["index"]),
        affine.quantize(kernel.bias, bias_params),
        err_msg=f"{kernel.layer}: int32 bias",
    )


def _assert_bit_exact(tflite, kernels, per_channel, bias_dtype="int32"):
    """Every predicted kernel equals the file; every one not predicted differs from it (so
    showing the layer's own numbers would have been wrong)."""
    interpreter, details, ops = _layer_ops(tflite, kernels)
    for kernel in kernels:
        op = ops[kernel.layer]
        if kernel.predicted:
            _assert_kernel_exact(interpreter, details, op, kernel, per_channel, bias_dtype)
        else:
            with pytest.raises(AssertionError):
                _assert_kernel_exact(interpreter, details, op, kernel, per_channel, bias_dtype)


APPLICATIONS = {
    "mobilenet_v2": "MobileNetV2",
    "mobilenet_v3_small": "MobileNetV3Small",
    "efficientnet_b0": "EfficientNetB0",
    "resnet50": "ResNet50",
}


@pytest.fixture(
    scope="module", params=["small", "fusions", "digits_cnn", "shapes_mobilenet", *APPLICATIONS]
)
def converted(request):
    """(name, kernels, calibrated .tflite, {per_channel: quantized .tflite}) for one model; each
    granularity is quantized once (ResNet50 takes seconds per quantization)."""
    name = request.param
    if name == "small":
        keras_model = _small_model()
        x = np.random.default_rng(0).uniform(-1, 1, (SAMPLES, 12, 12, 3)).astype(np.float32)
    elif name == "fusions":  # 0..255 pixels, as its Rescaling(1/255) input expects
        keras_model = _fusions_model()
        x = np.random.default_rng(0).uniform(0, 255, (SAMPLES, 12, 12, 3)).astype(np.float32)
    elif name in APPLICATIONS:
        keras_model = _application(APPLICATIONS[name])
        x = np.random.default_rng(0).uniform(0, 255, (SAMPLES, 32, 32, 3)).astype(np.float32)
    else:
        keras_model = request.getfixturevalue(name.split("_")[0] + "_model").keras_model
        x = request.getfixturevalue(name.split("_")[0]).calibration.x
    kernels = quantizable_kernels(keras_model)
    calibrated = _calibrated(keras_model, x)
    return name, kernels, calibrated, {}


def _quantized_once(converted, per_channel):
    _, _, calibrated, files = converted
    if per_channel not in files:
        files[per_channel] = _quantized(calibrated, per_channel)
    return files[per_channel]


@pytest.mark.parametrize("per_channel", [True, False], ids=["per-channel", "per-tensor"])
def test_weights_scales_zero_points_and_biases_equal_the_converter(converted, per_channel):
    _, kernels, _, _ = converted
    _assert_bit_exact(_quantized_once(converted, per_channel), kernels, per_channel)


def _calibrated_ranges(calibrated):
    """{tensor name: (min, max)} the calibration recorded in the calibrated flatbuffer."""
    from ai_edge_litert import schema_py_generated as schema

    graph = schema.Model.GetRootAs(calibrated, 0).Subgraphs(0)
    ranges = {}
    for i in range(graph.TensorsLength()):
        tensor = graph.Tensors(i)
        quantization = tensor.Quantization()
        if quantization is not None and quantization.MinLength() == 1:
            ranges[tensor.Name().decode()] = (
                float(quantization.MinAsNumpy()[0]),
                float(quantization.MaxAsNumpy()[0]),
            )
    return ranges


def test_activation_scales_and_zero_points_follow_from_the_calibrated_ranges(converted):
    """Asymmetric int8 activations: (min, max) from calibration -> the file's scale and zp;
    sigmoid and softmax outputs get the fixed 1/256, -128 whatever the range."""
    from workbench.tflite_file import read_tflite

    _, _, calibrated, _ = converted
    ranges = _calibrated_ranges(calibrated)
    model = read_tflite(_quantized_once(converted, per_channel=True))
    fixed = {o for op in model.ops if op.opcode in ("LOGISTIC", "SOFTMAX") for o in op.outputs}
    activations = [
        t
        for t in model.tensors
        if t.dtype == "int8" and not t.constant and t.name in ranges and t.index not in fixed
    ]
    assert len(activations) >= 3
    for index in fixed:
        assert (model.tensors[index].scales, model.tensors[index].zero_points) == (
            (1 / 256,),
            (-128,),
        )
    for tensor in activations:
        params = affine.params_from_range(*ranges[tensor.name], dtype="int8")
        assert tensor.scales == (float(params.stored_scale),), tensor.name
        assert tensor.zero_points == (int(params.zero_point),), tensor.name


def test_folding_happens_where_the_converter_folds(converted):
    name, kernels, _, _ = converted
    folded = {k.layer: k.folded_from for k in kernels}
    expected = {
        "small": {
            "conv_bias": "conv_bias_bn",
            "conv_relu": None,
            "dw": "dw_bn",
            "dense_bn": "dense_bn_bn",
            "head": None,
        },
        "digits_cnn": dict.fromkeys(folded),
    }
    fused = {k.layer: k.fused for k in kernels}
    if name in expected:
        assert folded == expected[name]
    elif name == "fusions":  # Keras names the constant ops; count them
        assert fused["stem"] == ("stem_rescale", "stem_bn")
        assert {layer: len(ops) for layer, ops in fused.items()} == {
            "stem": 2,
            "se": 1,  # + 3
            "dw_scaled": 3,  # * 1/6 before (hard-sigmoid's), * per channel and - 0.25 after
            "halved": 1,  # / 2
            "dense_shifted": 2,  # * 0.5 before, Rescaling(2, 0.25) after
            "normalised": 0,  # a per-channel Normalization is not folded
            "offset_conv": 0,
            "head": 0,
        }
        assert [k.layer for k in kernels if not k.predicted] == ["offset_conv"]
        reasons = {k.layer: k.not_predicted for k in kernels}
        assert "offset_input" in reasons["offset_conv"]
    elif name == "mobilenet_v3_small":  # hard-sigmoid's + 3 after each squeeze-excite conv
        shifted = [k.layer for k in kernels if k.fused and not k.folded_from]
        assert shifted and all(layer.endswith("squeeze_excite_conv_1") for layer in shifted)
    elif name == "efficientnet_b0":  # the input Rescaling(1/255) goes into the stem kernel
        assert fused["stem_conv"][0].startswith("rescaling")
    else:  # every conv is followed by a BatchNorm; the classifier is not
        assert [layer for layer, bn in folded.items() if bn is None] == [
            k.layer for k in kernels if k.kind == "Dense"
        ]
    assert all(k.predicted for k in kernels) or name == "fusions"


def test_int16x8_symmetric_int16_activations_and_int8_weights():
    """int16x8 (the converter's older quantizer path): int16 activations symmetric with
    ``scale = absmax / 32767`` and zero point 0; int8 weights as in full int8, int64 biases."""
    import tensorflow as tf

    from workbench.tflite_file import read_tflite

    keras_model = _small_model()
    x = np.random.default_rng(0).uniform(-1, 1, (SAMPLES, 12, 12, 3)).astype(np.float32)
    ranges = _calibrated_ranges(_calibrated(keras_model, x))
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([sample[None]] for sample in x)
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
    ]
    with silenced():
        tflite = converter.convert()
    activations = [
        t for t in read_tflite(tflite).tensors if t.dtype == "int16" and t.name in ranges
    ]
    assert len(activations) >= 5
    for tensor in activations:
        params = affine.params_from_range(*ranges[tensor.name], dtype="int16", symmetric=True)
        assert tensor.scales == (float(params.stored_scale),), tensor.name
        assert tensor.zero_points == (0,), tensor.name
    _assert_bit_exact(tflite, quantizable_kernels(keras_model), True, bias_dtype="int64")


@pytest.mark.parametrize("per_channel", [True, False], ids=["per-channel", "per-tensor"])
def test_litert_quantizer_weights_equal_the_core_with_its_rules(shapes_model, shapes, per_channel):
    """The LiteRT route (float .tflite, then the LiteRT Quantizer's static int8 recipe) writes
    ``max(absmax, 1e-9) / 127`` scales and rounds half to even; `tool="litert"` predicts it,
    near-dead channels of the folded depthwise/pointwise kernels included."""
    from ai_edge_litert.interpreter import Interpreter

    from workbench.qtyping import Granularity, Mode, QuantConfig, Route
    from workbench.session import Session
    from workbench.tflite_file import op_layers, read_tflite

    granularity = Granularity.PER_CHANNEL if per_channel else Granularity.PER_TENSOR
    config = QuantConfig(
        route=Route.LITERT, mode=Mode.INT8, granularity=granularity, calibration_samples=32
    )
    tflite = Session(shapes_model, shapes).variant(config).tflite
    kernels = {k.layer: k for k in quantizable_kernels(shapes_model)}
    model, interpreter = read_tflite(tflite), Interpreter(model_content=tflite)
    layers = op_layers(model, list(kernels))
    checked = 0
    for op in model.ops:
        if op.opcode not in WEIGHT_OPS:
            continue
        kernel, weight = kernels[layers[op.index]], model.tensors[op.inputs[1]]
        params = affine.weight_params(
            kernel.kernel, kind=kernel.kind, per_channel=per_channel, tool="litert"
        )
        assert weight.scales == tuple(float(s) for s in params.stored_scale.reshape(-1))
        assert weight.quantized_dimension == (kernel.channel_axis if per_channel else 0)
        np.testing.assert_array_equal(
            interpreter.get_tensor(weight.index),
            affine.quantize(kernel.kernel, params).astype(np.int8),
            err_msg=kernel.layer,
        )
        checked += 1
    assert checked == len(kernels)
