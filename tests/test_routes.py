"""Conversion routes on the digits_cnn demo: real conversions, checked in the produced files."""

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from workbench.engine.calibration import Calibration
from workbench.engine.routes import ROUTES, convert
from workbench.engine.routes.converter import tflite_converter
from workbench.engine.routes.layers import op_outputs
from workbench.errors import DataError, UnsupportedError
from workbench.qtyping import Granularity, IOType, Mode, QuantConfig, Route


@pytest.fixture(scope="module")
def calibration(digits):
    return Calibration(digits.calibration.x, digits.fingerprint)


def tensors(data: bytes) -> list[dict]:
    return Interpreter(model_content=data).get_tensor_details()


def dtypes(data: bytes) -> set[str]:
    return {detail["dtype"].__name__ for detail in tensors(data)}


def kernel_scales(data: bytes) -> list[np.ndarray]:
    """Scales of the quantized weight tensors (int8 constants with more than one dimension)."""
    return [
        d["quantization_parameters"]["scales"]
        for d in tensors(data)
        if d["dtype"] == np.int8
        and len(d["shape"]) >= 2
        and d["shape"][0] > 1
        and len(d["quantization_parameters"]["scales"])
    ]


def io_dtypes(data: bytes) -> tuple[str, str]:
    interpreter = Interpreter(model_content=data)
    return (
        interpreter.get_input_details()[0]["dtype"].__name__,
        interpreter.get_output_details()[0]["dtype"].__name__,
    )


def test_registry_has_both_routes():
    assert set(ROUTES) == {Route.CONVERTER, Route.LITERT}


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (Mode.FLOAT32, {"float32"}),
        (Mode.DYNAMIC, {"float32", "int8"}),
        (Mode.FLOAT16, {"float32", "float16"}),
        (Mode.INT8, {"int8", "int32"}),
        (Mode.INT16X8, {"int16", "int8"}),
    ],
)
def test_converter_modes_store_the_expected_dtypes(digits_model, calibration, mode, expected):
    data = convert(digits_model, QuantConfig(mode=mode), calibration)
    assert expected <= dtypes(data)
    if mode is Mode.FLOAT32:
        assert "int8" not in dtypes(data)


def test_per_tensor_and_per_channel_scales_differ(digits_model, calibration):
    channel = convert(digits_model, QuantConfig(mode=Mode.INT8), calibration)
    tensor = convert(
        digits_model, QuantConfig(mode=Mode.INT8, granularity=Granularity.PER_TENSOR), calibration
    )
    assert kernel_scales(channel) and all(len(s) > 1 for s in kernel_scales(channel))
    assert kernel_scales(tensor) and all(len(s) == 1 for s in kernel_scales(tensor))
    assert channel != tensor


def test_int8_variants_share_one_calibration(digits_model, digits):
    calibration = Calibration(digits.calibration.x, digits.fingerprint)
    for granularity in Granularity:
        convert(digits_model, QuantConfig(mode=Mode.INT8, granularity=granularity), calibration)
    convert(digits_model, QuantConfig(mode=Mode.INT8, io_type=IOType.INT8), calibration)
    assert calibration.calibrations == 1


@pytest.mark.parametrize("route", list(Route))
def test_conversion_is_deterministic(digits_model, digits, route):
    config = QuantConfig(route=route, mode=Mode.INT8, keep_float={"dense"})
    first = convert(digits_model, config, Calibration(digits.calibration.x))
    second = convert(digits_model, config, Calibration(digits.calibration.x))
    assert first == second


@pytest.mark.parametrize("io_type", [IOType.INT8, IOType.UINT8])
def test_integer_io(digits_model, calibration, io_type):
    data = convert(digits_model, QuantConfig(mode=Mode.INT8, io_type=io_type), calibration)
    assert io_dtypes(data) == (io_type.value, io_type.value)


def test_keep_float_layer_stays_float(digits_model, calibration):
    data = convert(digits_model, QuantConfig(mode=Mode.INT8, keep_float={"conv2"}), calibration)
    details = {d["name"]: d["dtype"].__name__ for d in tensors(data)}
    conv2 = [name for _, name in op_outputs(data) if "conv2" in name]
    dense = [name for _, name in op_outputs(data) if "/dense" in name]
    assert conv2 and all(details[name] == "float32" for name in conv2)
    assert dense and all(details[name] == "int8" for name in dense)


def test_unknown_keep_float_layer_is_named(digits_model, calibration):
    with pytest.raises(UnsupportedError, match="nope.*choose from conv1, conv2, dense"):
        convert(digits_model, QuantConfig(mode=Mode.INT8, keep_float={"nope"}), calibration)


def test_keep_float_outside_int8_on_converter_points_to_litert(digits_model, calibration):
    config = QuantConfig(mode=Mode.DYNAMIC, keep_float={"conv1"})
    with pytest.raises(UnsupportedError, match="route litert"):
        convert(digits_model, config, calibration)


def test_int8_without_data_says_what_to_do(digits_model):
    with pytest.raises(DataError, match="calibration data"):
        convert(digits_model, QuantConfig(mode=Mode.INT8), Calibration(None))


def test_tflite_input_on_converter_route_points_to_litert(digits_model, calibration):
    from workbench.models import load_model

    source = load_model(convert(digits_model, QuantConfig(mode=Mode.FLOAT32), calibration))
    with pytest.raises(UnsupportedError, match="route litert"):
        convert(source, QuantConfig(mode=Mode.DYNAMIC), calibration)


LITERT_MODES = [
    (Mode.DYNAMIC, {"float32", "int8"}),
    (Mode.FLOAT16, {"float32", "float16"}),
    (Mode.INT8, {"int8", "int32"}),
    (Mode.INT16X8, {"int16", "int8", "int64"}),
    (Mode.INT4, {"float32", "int8"}),  # int4 weights are reported as int8 by the interpreter
]


@pytest.mark.parametrize(("mode", "expected"), LITERT_MODES)
def test_litert_modes_store_the_expected_dtypes(digits_model, calibration, mode, expected):
    data = convert(digits_model, QuantConfig(route=Route.LITERT, mode=mode), calibration)
    assert expected <= dtypes(data)
    assert io_dtypes(data) == ("float32", "float32")


def test_litert_int4_is_smaller_than_int8(digits_model, calibration):
    int8 = convert(digits_model, QuantConfig(route=Route.LITERT, mode=Mode.INT8), calibration)
    int4 = convert(digits_model, QuantConfig(route=Route.LITERT, mode=Mode.INT4), calibration)
    assert len(int4) < 0.7 * len(int8)


def test_litert_granularity_and_keep_float_reuse_calibration(digits_model, digits):
    calibration = Calibration(digits.calibration.x, digits.fingerprint)
    base = QuantConfig(route=Route.LITERT, mode=Mode.INT8)
    channel = convert(digits_model, base, calibration)
    tensor = convert(digits_model, base.replace(granularity="per-tensor"), calibration)
    kept = convert(digits_model, base.replace(keep_float=["conv2"]), calibration)
    convert(digits_model, base.replace(mode="int16x8"), calibration)
    assert calibration.calibrations == 1
    assert kernel_scales(channel) and all(len(s) > 1 for s in kernel_scales(channel))
    assert kernel_scales(tensor) and all(len(s) == 1 for s in kernel_scales(tensor))
    details = {d["name"]: d["dtype"].__name__ for d in tensors(kept)}
    conv2 = [name for op, name in op_outputs(kept) if op == "CONV_2D" and "conv2" in name]
    assert conv2 and all(details[name] == "float32" for name in conv2)


def test_litert_route_takes_a_tflite_file(digits_model, calibration, tmp_path):
    from workbench.models import load_model

    path = tmp_path / "digits.tflite"
    path.write_bytes(convert(digits_model, QuantConfig(mode=Mode.FLOAT32), calibration))
    source = load_model(path)
    data = convert(source, QuantConfig(route=Route.LITERT, mode=Mode.INT8), calibration)
    assert {"int8", "int32"} <= dtypes(data)
    with pytest.raises(UnsupportedError, match="already quantized"):
        convert(load_model(data), QuantConfig(route=Route.LITERT, mode=Mode.INT4), calibration)


def test_litert_integer_io_is_refused(digits_model, calibration):
    config = QuantConfig(route=Route.LITERT, mode=Mode.INT8, io_type=IOType.INT8)
    with pytest.raises(UnsupportedError, match="route converter"):
        convert(digits_model, config, calibration)


def tiny_model(name, fn):
    """Dense -> an odd op in a Lambda layer -> Dense: a model with one problem op."""
    import keras

    from workbench.models import load_model

    inputs = keras.Input((8,), name="x")
    hidden = keras.layers.Dense(8, name="d1")(inputs)
    hidden = keras.layers.Lambda(fn, name=f"odd_{name}")(hidden)
    outputs = keras.layers.Dense(4, name="d2")(hidden)
    return load_model(keras.Model(inputs, outputs, name=f"m_{name}"))


def test_op_without_int16_kernel_names_op_and_layer():
    import keras

    model = tiny_model("sin", keras.ops.sin)
    x = np.random.default_rng(0).random((16, 8), dtype=np.float32)
    with pytest.raises(UnsupportedError, match=r"op SIN \(layer odd_sin\).*int8"):
        convert(model, QuantConfig(mode=Mode.INT16X8), Calibration(x))
    litert = convert(model, QuantConfig(route=Route.LITERT, mode=Mode.INT16X8), Calibration(x))
    assert "int16" in dtypes(litert)


def test_int16x8_per_tensor_depthwise_is_refused_before_calibrating(tmp_path):
    """TF's int16x8 quantizer fails on every per-tensor depthwise kernel; the converter route
    says so up front (for a Keras model from its layers, for a SavedModel from its float file),
    per-channel and the LiteRT route make the file."""
    import keras

    from workbench.models import load_model

    inputs = keras.Input((8, 8, 3))
    hidden = keras.layers.DepthwiseConv2D(3, name="dw")(inputs)
    hidden = keras.layers.GlobalAveragePooling2D()(hidden)
    keras_model = keras.Model(inputs, keras.layers.Dense(4)(hidden), name="m_dw")
    keras_model.export(str(tmp_path / "saved"), verbose=False)
    model = load_model(keras_model)
    calibration = Calibration(np.random.default_rng(0).random((8, 8, 8, 3), dtype=np.float32))
    per_tensor = QuantConfig(mode=Mode.INT16X8, granularity=Granularity.PER_TENSOR)
    for source in (model, load_model(tmp_path / "saved")):
        with pytest.raises(UnsupportedError, match=r"depthwise layer '.*dw.*'.*per-channel.*"):
            convert(source, per_tensor, calibration)
    assert calibration.calibrations == 0
    assert "int16" in dtypes(convert(model, per_tensor.replace(route="litert"), calibration))
    per_channel = per_tensor.replace(granularity="per-channel")
    assert "int16" in dtypes(convert(model, per_channel, calibration))


def test_int16x8_per_tensor_without_depthwise_converts(digits_model, calibration):
    per_tensor = QuantConfig(mode=Mode.INT16X8, granularity=Granularity.PER_TENSOR)
    assert "int16" in dtypes(convert(digits_model, per_tensor, calibration))


def test_op_without_builtin_kernel_names_op_and_layer():
    import keras

    from workbench.errors import ConversionError

    model = tiny_model("erf", keras.ops.erf)
    with pytest.raises(ConversionError, match=r"op tf\.Erf in layer odd_erf"):
        convert(model, QuantConfig(mode=Mode.FLOAT32), Calibration(None))


def test_saved_model_and_concrete_function_sources(digits_model, calibration, tmp_path):
    import tensorflow as tf

    from workbench.engine.quiet import silenced
    from workbench.engine.routes.layers import model_layer_names
    from workbench.models import load_model

    with silenced():
        digits_model.keras_model.export(str(tmp_path / "saved"))
    saved = load_model(tmp_path / "saved")
    assert model_layer_names(saved) == ["conv1", "conv2", "dense", "classifier"]
    kept = convert(saved, QuantConfig(mode=Mode.INT8, keep_float={"conv2"}), calibration)
    assert "float32" in {d["dtype"].__name__ for d in tensors(kept) if "conv2" in d["name"]}
    spec = tf.TensorSpec([None, 8, 8, 1], tf.float32)
    function = tf.function(lambda x: digits_model.keras_model(x)).get_concrete_function(spec)
    data = convert(load_model(function), QuantConfig(mode=Mode.INT8), calibration)
    assert {"int8", "int32"} <= dtypes(data)


def test_traced_float_file_equals_from_keras_model(shapes_model, shapes):
    """The float32 file made from the traced inference function is from_keras_model's: the same
    signature, ops, stored constants and outputs (only the model input and output tensors are
    named differently)."""
    import tensorflow as tf

    from workbench.engine.evaluation import run_tflite
    from workbench.engine.quiet import silenced
    from workbench.tflite_edit import unpack
    from workbench.tflite_file import read_tflite

    with silenced():
        keras_file = tf.lite.TFLiteConverter.from_keras_model(shapes_model.keras_model).convert()
    traced_file = ROUTES[Route.CONVERTER].float_tflite(shapes_model)
    assert shapes_model.derived.peek("traced") is not None  # it did take the traced path
    files = (keras_file, traced_file)
    signatures = [Interpreter(model_content=data).get_signature_list() for data in files]
    assert (
        signatures[0]
        == signatures[1]
        == {"serving_default": {"inputs": ["image"], "outputs": ["output_0"]}}
    )
    keras, traced = read_tflite(keras_file), read_tflite(traced_file)
    assert [op.opcode for op in keras.ops] == [op.opcode for op in traced.ops]

    def constants(data):
        model_t = unpack(data)
        buffers = [buffer.data for buffer in model_t.buffers]
        tensors = model_t.subgraphs[0].tensors
        return {t.name: bytes(buffers[t.buffer]) for t in tensors if buffers[t.buffer] is not None}

    assert constants(keras_file) == constants(traced_file)
    test = shapes.test.x[:64]
    np.testing.assert_array_equal(run_tflite(keras_file, test), run_tflite(traced_file, test))


@pytest.mark.parametrize(
    ("granularity", "io_type"),
    [(Granularity.PER_CHANNEL, IOType.FLOAT32), (Granularity.PER_TENSOR, IOType.INT8)],
)
def test_fast_int8_path_equals_the_converters_own(
    digits_model, digits, calibration, granularity, io_type
):
    """calibrate once + mlir_quantize gives the same tensors and outputs as convert()."""
    import tensorflow as tf

    from workbench.engine.evaluation import run_tflite
    from workbench.engine.quiet import silenced
    from workbench.tflite_file import read_tflite

    x = digits.calibration.x
    with silenced():
        converter = tflite_converter(digits_model)  # the graph the engine converts
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x[i : i + 1]] for i in range(len(x)))
        converter._experimental_disable_per_channel = granularity is Granularity.PER_TENSOR
        if io_type is IOType.INT8:
            converter.inference_input_type = converter.inference_output_type = tf.int8
        reference = converter.convert()
    config = QuantConfig(mode=Mode.INT8, granularity=granularity, io_type=io_type)
    mine = convert(digits_model, config, calibration)
    pairs = list(zip(read_tflite(reference).tensors, read_tflite(mine).tensors, strict=True))
    assert all(
        (a.name, a.dtype, a.scales, a.zero_points) == (b.name, b.dtype, b.scales, b.zero_points)
        for a, b in pairs
    )
    test = digits.test.x[:200]
    np.testing.assert_array_equal(run_tflite(reference, test), run_tflite(mine, test))


def test_int16x8_from_the_shared_calibration_equals_the_converters_own(digits_model, digits):
    """int16x8 quantized from the int8 variants' calibration matches its own convert()."""
    import tensorflow as tf

    from workbench.engine.evaluation import run_tflite
    from workbench.engine.quiet import silenced
    from workbench.tflite_file import read_tflite

    x = digits.calibration.x
    with silenced():
        converter = tflite_converter(digits_model)  # the graph the engine converts
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x[i : i + 1]] for i in range(len(x)))
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
        reference = converter.convert()
    calibration = Calibration(x, digits.fingerprint)  # its own: the count below is exact
    convert(digits_model, QuantConfig(mode=Mode.INT8), calibration)
    mine = convert(digits_model, QuantConfig(mode=Mode.INT16X8), calibration)
    assert calibration.calibrations == 1  # int8 and int16x8 share one calibration
    assert mine == convert(digits_model, QuantConfig(mode=Mode.INT16X8), calibration)
    pairs = list(zip(read_tflite(reference).tensors, read_tflite(mine).tensors, strict=True))
    assert all(
        (a.name, a.dtype, a.scales, a.zero_points) == (b.name, b.dtype, b.scales, b.zero_points)
        for a, b in pairs
    )
    assert "int16" in {a.dtype for a, _ in pairs}
    test = digits.test.x[:200]
    np.testing.assert_array_equal(run_tflite(reference, test), run_tflite(mine, test))
