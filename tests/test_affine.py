"""The affine core on hand-checked numbers (the converter comparison is in test_bit_exact)."""

import numpy as np
import pytest

from workbench import affine
from workbench.errors import UnsupportedError


def test_seed_example_minus3_to_6_as_uint8():
    params = affine.params_from_range(-3.0, 6.0, dtype="uint8")
    assert params.qmin == 0 and params.qmax == 255
    assert float(params.scale) == pytest.approx(9.0 / 255.0)
    assert int(params.zero_point) == 85
    q = affine.quantize(np.array([-3.0, 6.0, 1.5, 0.0]), params)
    assert q.tolist() == [0, 255, 128, 85]
    # 1.5 sits exactly half-way between codes 127 and 128; ties round away from zero
    assert abs(float(affine.dequantize(np.array([128]), params)[0]) - 1.5) <= 9 / 255 / 2 + 1e-6


def test_zero_is_exactly_representable_and_range_widened():
    rng = np.random.default_rng(0)
    for lo, hi in rng.uniform(-10, 10, size=(200, 2)):
        params = affine.params_from_range(min(lo, hi), max(lo, hi), dtype="int8")
        zero = affine.quantize(np.zeros(1), params)
        assert affine.dequantize(zero, params)[0] == 0.0
    positive = affine.params_from_range(2.0, 4.0, dtype="int8")
    assert int(positive.zero_point) == -128  # widened to [0, 4]
    assert affine.dequantize(np.array([127]), positive)[0] == pytest.approx(4.0, rel=1e-6)


def test_int8_activation_is_asymmetric_int16_symmetric():
    act = affine.params_from_range(-1.0, 3.0, dtype="int8")
    assert (act.qmin, act.qmax) == (-128, 127)
    assert int(act.zero_point) == -64
    int16 = affine.params_from_range(-1.0, 3.0, dtype="int16", symmetric=True)
    assert int(int16.zero_point) == 0
    assert float(int16.scale) == 3.0 / 32767


def test_weights_symmetric_narrow_per_tensor_and_per_channel():
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(4, 3, 3, 2)).astype(np.float32)  # OHWI
    kernel[2] *= 10.0
    tensor = affine.weight_params(kernel, kind="Conv2D", per_channel=False)
    assert tensor.axis is None and int(tensor.zero_point) == 0
    assert (tensor.qmin, tensor.qmax) == (-127, 127)
    q = affine.quantize(kernel, tensor)
    assert q.min() >= -127 and np.abs(q).max() == 127
    channel = affine.weight_params(kernel, kind="Conv2D", per_channel=True)
    assert channel.axis == 0 and channel.scale.shape == (4,)
    absmax = np.abs(kernel).max(axis=(1, 2, 3))
    np.testing.assert_array_equal(channel.stored_scale, absmax / np.float32(127))
    qc = affine.quantize(kernel, channel)
    assert np.abs(qc).max(axis=(1, 2, 3)).tolist() == [127] * 4
    # per-channel error is smaller than per-tensor for the small channels
    err_t = np.abs(affine.fake_quantize(kernel, tensor) - kernel)[0].max()
    err_c = np.abs(affine.fake_quantize(kernel, channel) - kernel)[0].max()
    assert err_c < err_t


@pytest.mark.parametrize(
    ("kind", "shape", "axis"),
    [("Conv2D", (5, 3, 3, 2), 0), ("DepthwiseConv2D", (1, 3, 3, 6), 3), ("Dense", (7, 4), 0)],
)
def test_weight_channel_axis(kind, shape, axis):
    kernel = np.random.default_rng(2).normal(size=shape).astype(np.float32)
    params = affine.weight_params(kernel, kind=kind, per_channel=True)
    assert params.axis == axis and params.scale.shape == (shape[axis],)


def test_weights_multiply_by_the_converters_inverse_scale():
    kernel = np.array([[0.5, -1.0], [2.0, 0.25]], dtype=np.float32)  # Dense (out, in)
    tensor = affine.weight_params(kernel, kind="Dense", per_channel=False)
    assert tensor.inverse_scale == np.float32(127.0) / np.float32(2.0)
    channel = affine.weight_params(kernel, kind="Dense", per_channel=True)
    np.testing.assert_array_equal(channel.inverse_scale, np.float32(1.0) / channel.stored_scale)
    assert affine.quantize(kernel, channel).tolist() == [[64, -127], [127, 16]]
    bias = affine.bias_params(0.5, channel)
    np.testing.assert_array_equal(bias.stored_scale, np.float32(0.5) * channel.stored_scale)
    assert bias.zero_point.tolist() == [0, 0] and bias.qmax == 2**31 - 1


def test_rounding_half_away_from_zero():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997], dtype=np.float32)
    assert affine.round_half_away(x).tolist() == [1, 2, 3, -1, -2, -3, 0]
    params = affine.params_from_range(-127.0, 127.0, dtype="int8", symmetric=True)
    assert affine.quantize(np.array([2.5, -2.5]), params).tolist() == [3, -3]


def test_clipping_and_fake_quantize_error_bound():
    params = affine.params_from_range(-1.0, 1.0, dtype="int8")
    assert affine.quantize(np.array([-5.0, 5.0]), params).tolist() == [-128, 127]
    x = np.linspace(-1, 1, 1001, dtype=np.float32)
    err = np.abs(affine.fake_quantize(x, params) - x)
    assert err.max() <= float(params.scale) / 2 + 1e-7


def test_zero_width_range_and_bad_arguments():
    empty = affine.params_from_range(0.0, 0.0, dtype="int8", symmetric=True)
    assert float(empty.scale) == 1.0 and int(empty.zero_point) == 0
    with pytest.raises(UnsupportedError, match="dtype"):
        affine.params_from_range(-1, 1, dtype="int2")
    with pytest.raises(UnsupportedError, match="kind"):
        affine.weight_params(np.ones((2, 2)), kind="LSTM", per_channel=True)
    with pytest.raises(UnsupportedError, match="signed"):
        affine.params_from_range(-1, 1, dtype="uint8", symmetric=True)
    with pytest.raises(ValueError):
        affine.params_from_range(np.nan, 1.0)


def test_to_dict_is_json():
    import json

    params = affine.weight_params(np.eye(3, dtype=np.float32), kind="Dense", per_channel=True)
    assert json.loads(json.dumps(params.to_dict()))["axis"] == 0


def test_stored_scale_is_the_converters_float32_arithmetic():
    # (float(max) - float(min)) / 255 in float32 can differ from the float64 scale rounded
    lo, hi = -22.79255, 46.88931
    params = affine.params_from_range(lo, hi, dtype="int8")
    expected = (np.float32(hi) - np.float32(lo)) / np.float32(255)
    assert params.stored_scale == expected and params.stored_scale.dtype == np.float32
    assert params.scale == (hi - lo) / 255
    assert params.replace(scale=np.array(0.5)).stored_scale == np.float32(0.5)


def test_near_dead_channels_get_the_converters_minimum_and_bias_fitting_scales():
    kernel = np.zeros((3, 4), dtype=np.float32)  # Dense (out, in)
    kernel[0] = [0.5, -1.0, 0.25, 0.0]
    kernel[1, 0] = 1e-9  # a near-dead channel
    kernel[2, 0] = 2e-9  # near-dead with a large bias
    plain = affine.weight_params(kernel, kind="Dense", per_channel=True)
    np.testing.assert_array_equal(
        plain.stored_scale, np.float32([1.0 / 127, 1e-6 / 254, 1e-6 / 254])
    )
    bias = np.array([0.1, 1e-3, 10.0], dtype=np.float32)
    fitted = affine.weight_params(
        kernel, kind="Dense", per_channel=True, bias=bias, input_scale=0.02
    )
    expected = 10.0 / affine.BIAS_MAX / 0.02  # only the third channel's bias overflows
    np.testing.assert_array_equal(fitted.stored_scale[:2], plain.stored_scale[:2])
    assert fitted.stored_scale[2] == np.float32(expected)
    int32 = affine.quantize(bias, affine.bias_params(0.02, fitted))
    assert np.abs(int32).max() <= affine.BIAS_MAX + 1


def test_litert_tool_floors_the_range_and_rounds_half_to_even():
    kernel = np.array([[1.27, 0.025, -0.035], [0.0, 0.0, 0.0]], dtype=np.float32)  # Dense
    params = affine.weight_params(kernel, kind="Dense", per_channel=True, tool="litert")
    np.testing.assert_array_equal(params.stored_scale, np.float32([1.27, 1e-9]) / np.float32(127))
    assert params.half_even and params.zero_point.tolist() == [0, 0]
    q = affine.quantize(kernel, params)
    assert q[0].tolist() == [127, 2, -4]  # 2.5 -> 2 and -3.5 -> -4: ties to even
    with pytest.raises(UnsupportedError, match="tool"):
        affine.weight_params(kernel, kind="Dense", per_channel=True, tool="onnx")
