"""Affine (scale, zero point) quantization with TFLite's rules, in plain numpy.

``real = scale * (q - zero_point)``. The rules follow what the TFLite converter writes:
the range is widened to include 0 so that 0.0 is exactly representable, the zero point is
nudged to an integer, activations are asymmetric int8 (or symmetric int16), weights are
symmetric int8 in [-127, 127] with zero point 0, per tensor or per output channel, and
rounding is half away from zero. Scales are computed and applied in float64, as the converter's
MLIR quantizer does; `AffineParams.stored_scale` is the float32 the flatbuffer holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from workbench.errors import UnsupportedError

DTYPES: dict[str, tuple[int, int]] = {
    "int8": (-128, 127),
    "uint8": (0, 255),
    "int16": (-32768, 32767),
}

# Output-channel axis of each kernel kind in TFLite layout:
# Conv2D OHWI, DepthwiseConv2D 1HW(C*m), Dense (out, in).
CHANNEL_AXIS: dict[str, int] = {"Conv2D": 0, "DepthwiseConv2D": 3, "Dense": 0}


@dataclass(frozen=True, eq=False)
class AffineParams:
    """Quantization parameters of one tensor; per-channel when `axis` is not None.

    `scale` (float64) and `zero_point` (int64) are 0-d for per-tensor, 1-d along `axis`.
    """

    scale: np.ndarray
    zero_point: np.ndarray
    qmin: int
    qmax: int
    axis: int | None = None

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
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "zero_point", zero_point)

    @property
    def per_channel(self) -> bool:
        return self.axis is not None

    @property
    def stored_scale(self) -> np.ndarray:
        """The scale as a `.tflite` file stores it (float32)."""
        return self.scale.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scale": self.stored_scale.tolist(),
            "zero_point": self.zero_point.tolist(),
            "qmin": self.qmin,
            "qmax": self.qmax,
            "axis": self.axis,
        }


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
    # Like MLIR's getNudgedScaleAndZeroPoint: take the zero point from whichever end of the
    # range carries the smaller rounding error, then nudge it onto the integer grid.
    from_min, from_max = qmin - lo / scale, qmax - hi / scale
    use_min = abs(qmin) + np.abs(lo / scale) < abs(qmax) + np.abs(hi / scale)
    zero_point = np.clip(round_half_away(np.where(use_min, from_min, from_max)), qmin, qmax)
    zero_point = np.where(empty, qmin, zero_point).astype(np.int64)
    return AffineParams(scale, zero_point, qmin, qmax, axis)


def weight_params(kernel: np.ndarray, *, kind: str, per_channel: bool) -> AffineParams:
    """Symmetric int8 [-127, 127] parameters of a kernel in TFLite layout (see CHANNEL_AXIS)."""
    if kind not in CHANNEL_AXIS:
        raise UnsupportedError(f"kind: {kind!r} is not one of {', '.join(CHANNEL_AXIS)}")
    kernel = np.asarray(kernel)
    if not per_channel:
        return params_from_range(
            kernel.min(), kernel.max(), dtype="int8", symmetric=True, narrow_range=True
        )
    axis = CHANNEL_AXIS[kind]
    others = tuple(i for i in range(kernel.ndim) if i != axis)
    return params_from_range(
        kernel.min(axis=others),
        kernel.max(axis=others),
        dtype="int8",
        symmetric=True,
        narrow_range=True,
        axis=axis,
    )


def _along_axis(values: np.ndarray, params: AffineParams, ndim: int) -> np.ndarray:
    if params.axis is None:
        return values
    shape = [1] * ndim
    shape[params.axis] = -1
    return values.reshape(shape)


def quantize(x: np.ndarray, params: AffineParams) -> np.ndarray:
    """Integers (int64) ``clip(round(x / scale) + zero_point, qmin, qmax)``, in float64."""
    x = np.asarray(x, dtype=np.float64)
    scale = _along_axis(params.scale, params, x.ndim)
    zero_point = _along_axis(params.zero_point, params, x.ndim)
    q = round_half_away(x / scale).astype(np.int64) + zero_point
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
