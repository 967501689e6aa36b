"""Affine (scale, zero point) quantization with TFLite's rules, in plain numpy.

``real = scale * (q - zero_point)``. The rules follow what the TFLite converter writes:
the range is widened to include 0 so that 0.0 is exactly representable, the zero point is
nudged to an integer, activations are asymmetric int8 (or symmetric int16), weights are
symmetric int8 in [-127, 127] with zero point 0, per tensor or per output channel, and
rounding is half away from zero.

Scales are computed in float64 (`AffineParams.scale`, the exact mapping the teaching views
show); `AffineParams.stored_scale` is the float32 a `.tflite` holds, computed with the
converter's float32 arithmetic. `quantize` divides exactly, except for parameters carrying an
`inverse_scale` (weights and biases): those multiply by that float32 factor in float32, as the
converter does when it writes constant tensors (``127 / absmax`` per tensor, ``1 / scale`` per
channel and for biases), so the integers match the `.tflite` bit for bit. Parameters made for
the LiteRT Quantizer (``weight_params(..., tool="litert")``) follow its numpy instead: divide
by the float32 scale in float32 and round half to even (``np.rint``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.errors import UnsupportedError

DTYPES: dict[str, tuple[int, int]] = {
    "int8": (-128, 127),
    "uint8": (0, 255),
    "int4": (-8, 7),  # weight-only int4 (LiteRT route)
    "int16": (-32768, 32767),
    "int32": (-(2**31) + 1, 2**31 - 1),
    "int64": (-(2**63) + 1, 2**63 - 1),  # biases of int16x8 models
}

# Output-channel axis of each kernel kind in TFLite layout:
# Conv2D OHWI, DepthwiseConv2D 1HW(C*m), Dense (out, in).
CHANNEL_AXIS: dict[str, int] = {"Conv2D": 0, "DepthwiseConv2D": 3, "Dense": 0}


@dataclass(frozen=True, eq=False)
class AffineParams:
    """Quantization parameters of one tensor; per-channel when `axis` is not None.

    `scale` (float64) and `zero_point` (int64) are 0-d for per-tensor, 1-d along `axis`.
    `stored_scale` (float32) is the scale as a `.tflite` stores it (default: `scale` rounded).
    `inverse_scale` (float32, shaped like `scale`), when set, is what `quantize` multiplies by.
    `half_even` selects the LiteRT Quantizer's arithmetic (float32 division, ties to even).
    """

    scale: np.ndarray
    zero_point: np.ndarray
    qmin: int
    qmax: int
    axis: int | None = None
    inverse_scale: np.ndarray | None = None
    stored_scale: np.ndarray | None = None  # filled from `scale` when not given
    half_even: bool = False

    def __post_init__(self) -> None:
        scale = np.asarray(self.scale, dtype=np.float64)
        zero_point = np.asarray(self.zero_point, dtype=np.int64)
        if scale.shape != zero_point.shape:
            raise ValueError(f"scale {scale.shape} and zero_point {zero_point.shape} differ")
        if (self.axis is None) != (scale.ndim == 0):
            raise ValueError("give 0-d scale for per-tensor (axis None), 1-d with an axis")
        if not np.all(np.isfinite(scale) & (scale > 0)):
            raise ValueError("scale must be finite and positive")
        if np.any((zero_point < self.qmin) | (zero_point > self.qmax)):
            raise ValueError(f"zero point outside [{self.qmin}, {self.qmax}]")
        if self.inverse_scale is not None:
            inverse = np.asarray(self.inverse_scale, dtype=np.float32)
            if inverse.shape != scale.shape:
                raise ValueError(f"inverse_scale {inverse.shape} differs from scale {scale.shape}")
            object.__setattr__(self, "inverse_scale", inverse)
        stored = scale if self.stored_scale is None else self.stored_scale
        object.__setattr__(self, "stored_scale", np.asarray(stored, dtype=np.float32))
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "zero_point", zero_point)

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "scale": self.stored_scale.tolist(),
            "zero_point": self.zero_point.tolist(),
            "qmin": self.qmin,
            "qmax": self.qmax,
            "axis": self.axis,
        }

    def replace(self, **changes: Any) -> AffineParams:
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        if "scale" in changes:  # a new scale brings its own stored (and inverse) scale
            fields.update(stored_scale=None, inverse_scale=None)
        return AffineParams(**{**fields, **changes})


def round_half_away(x: np.ndarray) -> np.ndarray:
    """Round to nearest, ties away from zero (TfLiteRound / std::round), exactly."""
    x = np.asarray(x)
    whole = np.trunc(x)
    return whole + np.where(np.abs(x - whole) >= 0.5, np.sign(x), 0.0).astype(x.dtype)


def _limits(dtype: str, narrow_range: bool) -> tuple[int, int]:
    if dtype not in DTYPES:
        raise UnsupportedError(f"dtype: {dtype!r} is not one of {', '.join(DTYPES)}")
    qmin, qmax = DTYPES[dtype]
    return qmin + int(narrow_range), qmax


def params_from_range(
    rmin: Any,
    rmax: Any,
    *,
    dtype: str = "int8",
    symmetric: bool = False,
    narrow_range: bool = False,
    axis: int | None = None,
) -> AffineParams:
    """Scale and zero point mapping [rmin, rmax] (scalars, or 1-d per channel) onto `dtype`.

    Symmetric: zero point 0, ``scale = max(|rmin|, |rmax|) / qmax``. Asymmetric:
    ``scale = (rmax - rmin) / (qmax - qmin)``, the zero point nudged to an integer. A range of
    width zero gets scale 1.0.
    """
    qmin, qmax = _limits(dtype, narrow_range)
    lo = np.minimum(np.asarray(rmin, dtype=np.float64), 0.0)
    hi = np.maximum(np.asarray(rmax, dtype=np.float64), 0.0)
    if lo.shape != hi.shape or lo.ndim != (0 if axis is None else 1):
        raise ValueError("rmin and rmax: give scalars (per-tensor) or 1-d arrays with an axis")
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ValueError("rmin and rmax must be finite")
    if symmetric:
        if qmin >= 0:
            raise UnsupportedError(f"dtype {dtype}: symmetric quantization needs a signed type")
        absmax = np.maximum(-lo, hi)
        scale = np.where(absmax == 0, 1.0, absmax / qmax)
        return AffineParams(scale, np.zeros(scale.shape, dtype=np.int64), qmin, qmax, axis)
    empty = hi == lo
    scale = np.where(empty, 1.0, (hi - lo) / (qmax - qmin))
    # the converter's float32 arithmetic: (float(max) - float(min)) / (qmax - qmin)
    width32 = hi.astype(np.float32) - lo.astype(np.float32)
    stored = np.where(empty, np.float32(1.0), width32 / np.float32(qmax - qmin))
    # Like MLIR's getNudgedScaleAndZeroPoint: take the zero point from whichever end of the
    # range carries the smaller rounding error, then nudge it onto the integer grid.
    from_min, from_max = qmin - lo / scale, qmax - hi / scale
    use_min = abs(qmin) + np.abs(lo / scale) < abs(qmax) + np.abs(hi / scale)
    zero_point = np.clip(round_half_away(np.where(use_min, from_min, from_max)), qmin, qmax)
    zero_point = np.where(empty, qmin, zero_point).astype(np.int64)
    return AffineParams(scale, zero_point, qmin, qmax, axis, stored_scale=stored)


BIAS_MAX = (2**31 - 1) // 2  # the converter keeps int32 biases within half the int32 range
SMALLEST_HALF_RANGE = 5e-7  # per-channel weight ranges narrower than 1e-6 widen to +-5e-7


def weight_params(
    kernel: np.ndarray,
    *,
    kind: str,
    per_channel: bool,
    bias: np.ndarray | None = None,
    input_scale: float | None = None,
    tool: str = "converter",
) -> AffineParams:
    """Symmetric int8 [-127, 127] parameters of a kernel in TFLite layout (see CHANNEL_AXIS).

    As the converter does: per channel, a range narrower than ``2 * SMALLEST_HALF_RANGE`` is
    widened to it (MLIR's ExpandVerySmallRange); given the layer's (folded) `bias` and its
    input's scale, a weight scale so small that the int32 bias would pass `BIAS_MAX` is raised
    to ``|bias| / BIAS_MAX / input_scale`` (near-dead channels with a BatchNorm bias need it).
    ``tool="litert"`` gives the LiteRT Quantizer's parameters: ``max(absmax, 1e-9) / 127`` in
    float32, no bias adjustment, its own rounding (see `AffineParams.half_even`).
    """
    if kind not in CHANNEL_AXIS:
        raise UnsupportedError(f"kind: {kind!r} is not one of {', '.join(CHANNEL_AXIS)}")
    kernel = np.asarray(kernel, dtype=np.float32)
    axis = CHANNEL_AXIS[kind] if per_channel else None
    others = tuple(i for i in range(kernel.ndim) if i != axis)
    lo, hi = kernel.min(axis=others), kernel.max(axis=others)
    if tool == "litert":
        return _litert_weight_params(lo, hi, axis)
    if tool != "converter":
        raise UnsupportedError(f"tool: {tool!r} is not one of converter, litert")
    if per_channel:
        lo, hi = np.minimum(lo, -SMALLEST_HALF_RANGE), np.maximum(hi, SMALLEST_HALF_RANGE)
    params = params_from_range(lo, hi, dtype="int8", symmetric=True, narrow_range=True, axis=axis)
    if per_channel:
        inverse = np.float32(1.0) / params.stored_scale
    else:  # PortableSymmetricQuantizeFloats: 127 / absmax, not 1 / scale
        absmax = np.maximum(-lo, hi)
        inverse = np.float32(127.0) / absmax if absmax > 0 else np.float32(1.0)
    # the converter carries the float32 scale on (in double): it is what bias scales multiply
    params = params.replace(scale=params.stored_scale.astype(np.float64), inverse_scale=inverse)
    if bias is None or input_scale is None:
        return params
    return _fit_bias(params, np.asarray(bias, dtype=np.float32), float(input_scale))


def _litert_weight_params(lo: np.ndarray, hi: np.ndarray, axis: int | None) -> AffineParams:
    """The LiteRT Quantizer's symmetric int8 weight parameters (uniform_quantize_tensor.py)."""
    bound = np.maximum(np.maximum(np.abs(lo), np.abs(hi)), np.float32(1e-9)).astype(np.float32)
    stored = bound / np.float32(127)
    zero_point = np.zeros(stored.shape, dtype=np.int64)
    return AffineParams(stored, zero_point, -127, 127, axis, stored_scale=stored, half_even=True)


def _fit_bias(weights: AffineParams, bias: np.ndarray, input_scale: float) -> AffineParams:
    """Raise weight scales whose int32 bias would not fit (QuantizationDriver's adjustment)."""
    halves = np.abs(bias).astype(np.float64)
    if weights.axis is None:
        halves = np.array(halves.max() if halves.size else 0.0)
    bias_scale = input_scale * weights.stored_scale.astype(np.float64)
    overflow = (
        halves / bias_scale > BIAS_MAX
        if weights.axis is not None
        else (halves / bias_scale >= BIAS_MAX)
    )
    if not np.any(overflow):
        return weights
    scale = np.where(overflow, halves / BIAS_MAX / input_scale, weights.scale)
    stored = scale.astype(np.float32)
    inverse = weights.inverse_scale
    if weights.axis is not None:  # per tensor, the legacy writer keeps its own inverse
        inverse = np.float32(1.0) / stored
    return weights.replace(scale=scale, stored_scale=stored, inverse_scale=inverse)


def bias_params(input_scale: float, weights: AffineParams, dtype: str = "int32") -> AffineParams:
    """Bias parameters: ``scale = input_scale * weight_scale``, zero point 0.

    The product is taken in double and rounded to float32 once, as the converter writes it: its
    weight scale is the stored float32 one, except on channels raised to fit their bias, where it
    is the double before rounding. Biases are int32 next to int8 activations and int64 next to
    int16 activations.
    """
    scale = (np.float64(np.float32(input_scale)) * weights.scale).astype(np.float32)
    qmin, qmax = _limits(dtype, narrow_range=False)
    zero_point = np.zeros(scale.shape, dtype=np.int64)
    axis = None if weights.axis is None else 0
    inverse = np.float32(1.0) / scale
    return AffineParams(scale, zero_point, qmin, qmax, axis, inverse_scale=inverse)


def _along_axis(values: np.ndarray, params: AffineParams, ndim: int) -> np.ndarray:
    if params.axis is None:
        return values
    shape = [1] * ndim
    shape[params.axis] = -1
    return values.reshape(shape)


def quantize(x: np.ndarray, params: AffineParams) -> np.ndarray:
    """Integers (int64) ``clip(round(x / scale) + zero_point, qmin, qmax)``."""
    zero_point = _along_axis(params.zero_point, params, np.ndim(x))
    if params.half_even:  # LiteRT Quantizer: rint(x / scale + zero_point) in float32
        stored = _along_axis(params.stored_scale, params, np.ndim(x))
        scaled = np.asarray(x, dtype=np.float32) / stored
        return np.clip(np.rint(scaled + zero_point).astype(np.int64), params.qmin, params.qmax)
    if params.inverse_scale is not None:
        inverse = _along_axis(params.inverse_scale, params, np.ndim(x))
        scaled = np.asarray(x, dtype=np.float32) * inverse
    else:
        scaled = np.asarray(x, dtype=np.float64) / _along_axis(params.scale, params, np.ndim(x))
    q = round_half_away(scaled).astype(np.int64) + zero_point
    return np.clip(q, params.qmin, params.qmax)


def dequantize(q: np.ndarray, params: AffineParams) -> np.ndarray:
    """Real values (float32) ``scale * (q - zero_point)``."""
    q = np.asarray(q, dtype=np.int64)
    scale = _along_axis(params.scale, params, q.ndim)
    zero_point = _along_axis(params.zero_point, params, q.ndim)
    return (scale * (q - zero_point)).astype(np.float32)


def fake_quantize(x: np.ndarray, params: AffineParams) -> np.ndarray:
    """`x` after a round trip through the integer grid (rounding and clipping applied)."""
    return dequantize(quantize(x, params), params)


def quantize_like_kernel(x: np.ndarray, params: AffineParams) -> np.ndarray:
    """What LiteRT's QUANTIZE op computes for per-tensor `params`: ``x / scale`` in float32,
    rounded half away from zero, plus the zero point, clipped. Float32 division can land a
    hair below an exact tie (1.5 / float32(9 / 255) = 42.499996), so the kernel may round
    down where exact arithmetic rounds up."""
    scale = np.float32(np.asarray(params.scale).reshape(-1)[0])
    zero_point = int(np.asarray(params.zero_point).reshape(-1)[0])
    q = round_half_away(np.asarray(x, dtype=np.float32) / scale).astype(np.int64) + zero_point
    return np.clip(q, params.qmin, params.qmax)
