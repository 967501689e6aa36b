"""Affine mapping explainer: a real range and an integer type, the grid, and the error.

Needs no model: `AffineExplainer()` starts on [-3, 6] with int8, as in the workshop.
All numbers come from `workbench.affine` (the same rules the converter applies).
"""

from __future__ import annotations

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
        self.chart.show(self._figure(info))
