"""Where each op runs (XNNPACK or a reference kernel), checked on the interpreter, for the
variants of digits_cnn in every mode, and the fast-path warnings checked against it."""

import pytest

from workbench.engine.calibration import Calibration
from workbench.engine.kernels import (
    MODE_WARNINGS,
    REFERENCE,
    XNNPACK,
    fast_path_warning,
    file_reason,
    runtime_report,
)
from workbench.engine.routes import convert
from workbench.qtyping import Mode, QuantConfig, Route
from workbench.tflite_edit import pack, unpack
from workbench.tflite_file import read_tflite

LAYERS = ["conv1", "conv2", "dense", "classifier"]
KERNEL_OPS = ("CONV_2D", "FULLY_CONNECTED")


@pytest.fixture(scope="module")
def variants(digits_model, digits):
    calibration = Calibration(digits.calibration.x, digits.fingerprint)
    return {
        mode: convert(digits_model, QuantConfig(route=Route.LITERT, mode=mode), calibration)
        for mode in Mode
    }


@pytest.mark.parametrize("mode", list(Mode))
def test_layers_leave_xnnpack_exactly_in_the_modes_that_warn(variants, mode):
    report = runtime_report(variants[mode], LAYERS)
    assert report.checked and report.refusal is None
    layers = [op for op in report.ops if op.opcode in KERNEL_OPS]
    assert {op.layer for op in layers} == set(LAYERS)
    off_xnnpack = mode in (Mode.INT16X8, Mode.INT4)  # dynamic: only depthwise leaves (below)
    assert {op.kernel for op in layers} == {REFERENCE if off_xnnpack else XNNPACK}
    assert bool(fast_path_warning(mode)) == (off_xnnpack or mode is Mode.DYNAMIC)
    if mode is Mode.INT16X8:
        assert all(op.reason == "int16 activations" for op in report.ops)
    if mode is Mode.INT4:
        assert {op.reason for op in layers} == {"int4 weights"}
    assert report.summary().startswith(f"{len(report.on_reference)} of {len(report.ops)}")


def test_dynamic_range_depthwise_leaves_xnnpack(shapes_model, shapes):
    """What the dynamic-range warning says: conv and dense stay on XNNPACK, depthwise does not."""
    calibration = Calibration(shapes.calibration.x, shapes.fingerprint)
    data = convert(shapes_model, QuantConfig(route=Route.LITERT, mode=Mode.DYNAMIC), calibration)
    kernels = {}
    for op in runtime_report(data).ops:
        kernels.setdefault(op.opcode, set()).add(op.kernel)
    assert (
        kernels["DEPTHWISE_CONV_2D"] == {REFERENCE} and "depthwise" in MODE_WARNINGS[Mode.DYNAMIC]
    )
    assert kernels["CONV_2D"] == kernels["FULLY_CONNECTED"] == {XNNPACK}


def test_the_file_and_the_interpreter_agree_on_int16_and_int4(variants):
    """Every op the file says has int16 activations or int4 weights is off XNNPACK."""
    for mode in (Mode.INT16X8, Mode.INT4):
        report = runtime_report(variants[mode])
        model = read_tflite(variants[mode])
        builtins = frozenset(op.opcode for op in model.ops)
        for op in report.ops:
            if file_reason(model, model.ops[op.index], builtins):
                assert op.kernel == REFERENCE, op


def test_a_custom_op_is_off_xnnpack_for_the_file_s_reason(variants):
    from ai_edge_litert.schema_py_generated import BuiltinOperator

    model_t = unpack(variants[Mode.FLOAT32])
    code = next(c for c in model_t.operatorCodes if c.builtinCode == BuiltinOperator.SOFTMAX)
    code.builtinCode, code.deprecatedBuiltinCode = BuiltinOperator.CUSTOM, BuiltinOperator.CUSTOM
    code.customCode = b"MySoftmax"
    report = runtime_report(pack(model_t))
    (custom,) = [op for op in report.ops if op.opcode == "MySoftmax"]
    assert custom.kernel == REFERENCE and custom.reason == "custom op"
    assert "custom op: 1" in report.summary()


def test_quantized_summary_shows_where_each_layer_runs(variants):
    import dataclasses

    from workbench.tflite_file import quantization_summary
    from workbench.widgets.quantized import quantized_html

    def summary(mode):
        data = variants[mode]
        plain = quantization_summary(data, LAYERS)
        return dataclasses.replace(plain, runtime=runtime_report(data, LAYERS))

    before, after = summary(Mode.FLOAT32), summary(Mode.INT16X8)
    page = quantized_html(before, after, "int16x8")
    assert "runs on" in page and page.count("reference: int16 activations") == len(LAYERS)
    assert after.runtime.summary() in page and after.to_dict()["runtime"]["checked"]
    assert quantized_html(before, summary(Mode.INT8), "int8").count("<td>XNNPACK</td>") == 4
