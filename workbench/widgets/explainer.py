"""Affine mapping explainer: a real range and an integer type, the grid, and the error.

Needs no model: `AffineExplainer()` starts on [-3, 6] with int8, as in the workshop.
All numbers come from `workbench.affine` (the same rules the converter applies). The worked
example maps the middle of the range both ways: exactly (what the formula says; 1.5 in
[-3, 6] is a tie, 42.5 steps, which rounds half away from zero to 43) and as LiteRT's
QUANTIZE kernel does it, dividing in float32 (42.499996, which rounds to 42).
"""

from __future__ import annotations

from fractions import Fraction
from html import escape
from typing import Any

import ipywidgets as w
import numpy as np
import plotly.graph_objects as go

from workbench.widgets import figures
from workbench.widgets.html import key_value_table
from workbench.widgets.plot import Plot
from workbench.widgets.view import View, heading, styled

DTYPES = (("8 bits (int8)", "int8"), ("8 bits (uint8)", "uint8"), ("16 bits (int16)", "int16"))


def explain(rmin: float, rmax: float, dtype: str = "int8", points: int = 1201) -> dict:
    """Scale, zero point and errors of mapping [rmin, rmax] onto `dtype`, on a sample line."""
    from workbench import affine

    params = affine.params_from_range(rmin, rmax, dtype=dtype)
    span = max(rmax - rmin, 1e-6)
    x = np.linspace(rmin - 0.25 * span, rmax + 0.25 * span, points, dtype=np.float32)
    q = affine.quantize(x, params)
    x_hat = affine.dequantize(q, params)
    scale = float(np.asarray(params.scale).reshape(-1)[0])
    zero_point = int(np.asarray(params.zero_point).reshape(-1)[0])
    lo, hi = (params.qmin - zero_point) * scale, (params.qmax - zero_point) * scale
    inside = (x >= lo) & (x <= hi)
    error = np.abs(x_hat - x)
    return {
        "example": worked_example((rmin + rmax) / 2, rmin, rmax, params),
        "params": params,
        "x": x,
        "q": q,
        "x_hat": x_hat,
        "scale": scale,
        "zero_point": zero_point,
        "representable": (lo, hi),
        "max_rounding_error": float(error[inside].max()) if inside.any() else 0.0,
        "max_clipping_error": float(error[~inside].max()) if (~inside).any() else 0.0,
    }


def _round_half_away(value: Fraction) -> int:
    whole = int(abs(value) + Fraction(1, 2))
    return whole if value >= 0 else -whole


def worked_example(value: float, rmin: float, rmax: float, params: Any) -> dict:
    """`value` mapped exactly (rational arithmetic) and as the QUANTIZE kernel does it."""
    from workbench import affine

    lo, hi = Fraction(min(rmin, 0.0)), Fraction(max(rmax, 0.0))
    zero_point = int(np.asarray(params.zero_point).reshape(-1)[0])
    steps = (Fraction(value) * (params.qmax - params.qmin) / (hi - lo)) if hi > lo else Fraction(0)
    exact = min(max(_round_half_away(steps) + zero_point, params.qmin), params.qmax)
    scale = np.float32(np.asarray(params.scale).reshape(-1)[0])
    kernel_steps = float(np.float32(value) / scale)
    kernel = int(affine.quantize_like_kernel(np.float32(value), params))
    return {
        "value": value,
        "zero_point": zero_point,
        "steps": steps,
        "exact": exact,
        "kernel_steps": kernel_steps,
        "kernel": kernel,
    }


def example_text(example: dict) -> str:
    """One paragraph: both integers for the example value, and why they differ if they do."""
    value, steps = example["value"], example["steps"]
    exact, kernel = example["exact"], example["kernel"]
    text = (
        f"{value:g} / scale is exactly {float(steps):.6g}; rounded half away from zero and "
        f"plus the zero point {example['zero_point']}, that is integer {exact}. LiteRT's "
        f"QUANTIZE kernel divides in float32: {value:g} / scale = "
        f"{example['kernel_steps']:.8g}, so it gives {kernel}."
    )
    if exact != kernel:
        text += (
            " The exact value is a tie (or within float32 rounding of one); float32 division "
            "lands just below it, so the kernel rounds the other way."
        )
    return text


class AffineExplainer(View):
    """Range slider and bit width in; the mapping, scale, zero point and errors out."""

    def __init__(self, rmin: float = -3.0, rmax: float = 6.0, dtype: str = "int8") -> None:
        self.range = styled(
            w.FloatRangeSlider(
                value=(rmin, rmax),
                min=-10.0,
                max=10.0,
                step=0.1,
                description="Real range",
                continuous_update=False,
                layout={"width": "480px"},
            ),
            "wb-affine-range",
        )
        self.dtype = styled(
            w.Dropdown(options=DTYPES, value=dtype, description="Integers"), "wb-affine-dtype"
        )
        self.numbers = styled(w.HTML(), "wb-affine-numbers")
        self.example = styled(w.HTML(), "wb-affine-example")
        self.chart = Plot(self._figure(), "wb-affine-chart")
        self.widget = styled(
            w.VBox(
                [
                    heading(
                        "Affine mapping",
                        "real = scale × (integer − zero point). The range is widened to include "
                        "0 so that 0 is exact; values outside the representable range clip.",
                    ),
                    w.HBox([self.range, self.dtype]),
                    self.numbers,
                    self.example,
                    self.chart.widget,
                ]
            ),
            "wb-explainer",
        )
        self.range.observe(lambda _: self._show(), "value")
        self.dtype.observe(lambda _: self._show(), "value")
        self._show()

    def _explain(self) -> dict:
        rmin, rmax = self.range.value
        return explain(rmin, rmax, self.dtype.value)

    def _figure(self, info: dict | None = None) -> go.Figure:
        info = info or self._explain()
        params = info["params"]
        lo, hi = info["representable"]
        return figures.affine_mapping(
            info["x"],
            info["q"],
            info["x_hat"],
            rmin=lo,
            rmax=hi,
            qmin=params.qmin,
            qmax=params.qmax,
        )

    def _show(self) -> None:
        info = self._explain()
        params = info["params"]
        lo, hi = info["representable"]
        self.numbers.value = key_value_table(
            {
                "scale": f"{info['scale']:.6g}",
                "zero point": info["zero_point"],
                "integer range": f"[{params.qmin}, {params.qmax}]",
                "representable reals": f"[{lo:.4g}, {hi:.4g}]",
                "max rounding error (≈ scale / 2)": f"{info['max_rounding_error']:.4g}",
                "max clipping error (outside the range)": f"{info['max_clipping_error']:.4g}",
            },
            "wb-affine-table",
        )
        example = info["example"]
        self.example.value = (
            f'<div class="wb-help"><b>Worked example, the middle of the range:</b> '
            f"{escape(example_text(example))}</div>"
        )
        self.chart.show(self._figure(info))
