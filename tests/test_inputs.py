"""One validator and one rounding rule for model inputs, used by every part that feeds a model."""

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from workbench.engine.evaluation import run_tflite
from workbench.errors import DataError
from workbench.inputs import check_inputs, quantize_inputs, shape_fits
from workbench.inspection import activation_ranges
from workbench.qtyping import IOType, QuantConfig
from workbench.session import Session
from workbench.tflite_file import read_tflite


@pytest.fixture(scope="module")
def session(digits_model, digits):
    return Session(digits_model, digits)


def test_quantize_inputs_is_the_quantize_kernel_on_every_tie(session):
    """Float inputs halfway between two integers of the int8 input grid, through the model's own
    QUANTIZE op (float I/O), against the rule an int8-I/O model's inputs are encoded with."""
    data = session.variant(QuantConfig()).tflite
    model = read_tflite(data)
    quantize = next(op for op in model.ops if op.opcode == "QUANTIZE")
    tensor = model.tensors[quantize.outputs[0]]
    scale, zero_point = np.float32(tensor.scales[0]), tensor.zero_points[0]
    steps = np.arange(-128 - zero_point, 127 - zero_point, dtype=np.float32)
    ties = ((steps + np.float32(0.5)) * scale).astype(np.float32)
    x = np.resize(np.concatenate([ties, -ties]), (16, 8, 8, 1)).astype(np.float32)
    interpreter = Interpreter(model_content=data, experimental_preserve_all_tensors=True)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, list(x.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, x)
    interpreter.invoke()
    kernel = interpreter.get_tensor(tensor.index)
    ours = quantize_inputs(x, np.int8, float(scale), zero_point)
    assert ours.dtype == np.int8
    np.testing.assert_array_equal(ours, kernel)


def test_integer_io_model_sees_what_the_float_io_model_computes(session, digits):
    """An int8-I/O variant fed through `quantize_inputs` gives the float-I/O variant's scores."""
    x = digits.test.x[:64]
    float_io = run_tflite(session.variant(QuantConfig()).tflite, x)
    int8_io = run_tflite(session.variant(QuantConfig(io_type=IOType.INT8)).tflite, x)
    np.testing.assert_array_equal(np.argmax(float_io, 1), np.argmax(int8_io, 1))


@pytest.mark.parametrize(
    ("x", "message"),
    [
        ([["a"]], "numeric"),
        (np.zeros((4, 8, 8)), r"samples have shape \(8, 8\) but the model input expects"),
        (np.zeros((0, 8, 8, 1)), "no samples"),
        (np.full((2, 8, 8, 1), np.nan), "128 NaN or infinite"),
        (np.float32(3.0), "samples have shape"),
    ],
)
def test_every_part_gives_the_same_one_line_answer(session, x, message):
    calls = [
        lambda: check_inputs(x, (None, 8, 8, 1), "x"),
        lambda: run_tflite(session.float_bytes, x),
        lambda: activation_ranges(session.model, x),
    ]
    for call in calls:
        with pytest.raises(DataError, match=message) as caught:
            call()
        assert "\n" not in str(caught.value) and str(caught.value).startswith("x: ")


def test_shape_fits_treats_none_as_any_size():
    assert shape_fits((8, 8, 1), (None, 8, 8, 1))
    assert shape_fits((5, 3), (None, None, 3))
    assert not shape_fits((8, 8), (None, 8, 8, 1))
    assert not shape_fits((8, 8, 3), (None, 8, 8, 1))
