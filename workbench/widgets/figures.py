"""Pure figure builders: plain data in, a `plotly.graph_objects.Figure` out.

Views keep one long-lived `Plot` each (`plot.py`) and hand it a freshly built figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.qtyping import LayerError, VariantResult

IDEAL_RMSE_PER_SCALE = 1 / math.sqrt(12)  # uniform rounding error, in units of the scale
BLUE, ORANGE, GREY, RED, GREEN = "#1f77b4", "#ff7f0e", "#9aa5b1", "#d62728", "#2ca02c"
_MARGIN = {"l": 50, "r": 20, "t": 40, "b": 40}


def _layout(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        height=height,
        margin=_MARGIN,
        template="plotly_white",
        showlegend=False,
    )
    return fig


def range_bars(
    names: Sequence[str],
    mins: Sequence[float],
    maxs: Sequence[float],
    *,
    selected: str | None = None,
    title: str,
) -> go.Figure:
    """One floating bar per layer from its min to its max; the selected layer highlighted."""
    mins_ = np.asarray(mins, dtype=float)
    maxs_ = np.asarray(maxs, dtype=float)
    colors = [ORANGE if name == selected else BLUE for name in names]
    fig = go.Figure(
        go.Bar(
            x=list(names),
            y=(maxs_ - mins_).tolist(),
            base=mins_.tolist(),
            marker_color=colors,
            customdata=np.stack([mins_, maxs_], axis=-1).tolist() if len(names) else [],
            hovertemplate="%{x}<br>min %{customdata[0]:.4g}<br>max %{customdata[1]:.4g}"
            "<extra></extra>",
        )
    )
    fig.add_hline(y=0, line_color=GREY, line_width=1)
    fig.update_xaxes(tickangle=-40)
    return _layout(fig, title)


def channel_strip(
    layer: str,
    channel_mins: Sequence[float],
    channel_maxs: Sequence[float],
    tensor_scale: float,
    tensor_zero_point: int = 0,
    *,
    levels: int = 255,
    grid_every: int = 16,
) -> go.Figure:
    """Per-channel ranges of one kernel against the per-tensor int8 grid.

    Each bar is one output channel; its colour and hover text say how many of the `levels`
    integer levels of the shared per-tensor scale that channel can actually use.
    """
    lo = np.asarray(channel_mins, dtype=float)
    hi = np.asarray(channel_maxs, dtype=float)
    used = np.clip(np.round((hi - lo) / tensor_scale), 0, levels) if tensor_scale > 0 else hi * 0
    channels = np.arange(len(lo))
    fig = go.Figure(
        go.Bar(
            x=channels.tolist(),
            y=(hi - lo).tolist(),
            base=lo.tolist(),
            marker={
                "color": (used / levels).tolist(),
                "colorscale": "RdYlGn",
                "cmin": 0,
                "cmax": 1,
                "colorbar": {"title": "levels used", "thickness": 10},
            },
            customdata=used.astype(int).tolist(),
            hovertemplate="channel %{x}<br>uses %{customdata} of "
            + str(levels)
            + " levels<extra></extra>",
        )
    )
    q_lo, q_hi = -(levels // 2) - tensor_zero_point, levels // 2 - tensor_zero_point
    for q in range(q_lo - q_lo % grid_every, q_hi + 1, grid_every):
        fig.add_hline(y=q * tensor_scale, line_color=GREY, line_width=0.5, opacity=0.5)
    for edge in (q_lo, q_hi):
        fig.add_hline(y=edge * tensor_scale, line_color=RED, line_dash="dash", line_width=1.5)
    median_used = int(np.median(used)) if len(used) else 0
    title = (
        f"{layer}: per-channel ranges on the per-tensor grid (dashed), "
        f"median channel uses {median_used}/{levels} levels"
    )
    fig.update_xaxes(title_text="output channel")
    return _layout(fig, title)


def activation_histogram(
    layer: str,
    counts: Sequence[float],
    edges: Sequence[float],
    lo: float,
    hi: float,
) -> go.Figure:
    """Histogram of one layer's activations with the quantization range [lo, hi] marked.

    Bins outside the range (values that would be clipped) are drawn red.
    """
    counts_ = np.asarray(counts, dtype=float)
    edges_ = np.asarray(edges, dtype=float)
    centres = (edges_[:-1] + edges_[1:]) / 2
    clipped = (centres < lo) | (centres > hi)
    total = counts_.sum() or 1.0
    fig = go.Figure(
        go.Bar(
            x=centres.tolist(),
            y=counts_.tolist(),
            width=np.diff(edges_).tolist(),
            marker_color=[RED if c else BLUE for c in clipped],
        )
    )
    for edge in (lo, hi):
        fig.add_vline(x=edge, line_color=ORANGE, line_dash="dash", line_width=2)
    share = counts_[clipped].sum() / total
    fig.update_yaxes(type="log", title_text="count")
    title = f"{layer}: activations, range [{lo:.3g}, {hi:.3g}], {share:.2%} of values clipped"
    return _layout(fig, title)


def _percent(value: float | None) -> float | None:
    return None if value is None else 100 * value


def board_chart(rows: Sequence[VariantResult], current_key: str | None = None) -> go.Figure:
    """Size, accuracy, agreement and latency of each variant side by side."""
    labels = [row.label for row in rows]
    colors = [ORANGE if row.config.key == current_key else BLUE for row in rows]
    columns: list[tuple[str, list[Any]]] = [
        ("size (KB)", [row.size_bytes / 1024 for row in rows]),
        ("accuracy (%)", [_percent(row.accuracy) for row in rows]),
        ("agreement with float (%)", [_percent(row.agreement) for row in rows]),
        ("latency (ms)", [row.latency_ms for row in rows]),
    ]
    fig = make_subplots(rows=1, cols=4, subplot_titles=[title for title, _ in columns])
    for col, (title, values) in enumerate(columns, start=1):
        fig.add_trace(
            go.Bar(
                x=labels,
                y=values,
                marker_color=colors,
                name=title,
                hovertemplate="%{x}<br>%{y:.4g}<extra></extra>",
            ),
            row=1,
            col=col,
        )
    fig.update_xaxes(showticklabels=False)
    _layout(fig, "", height=260)
    fig.update_layout(margin={"l": 40, "r": 10, "t": 30, "b": 10})
    return fig


def layer_error_chart(
    errors: Sequence[LayerError], *, sort: bool = True, keep_float: Sequence[str] = ()
) -> go.Figure:
    """RMSE/scale per layer with the ideal-rounding reference line 1/sqrt(12)."""
    items = sorted(errors, key=lambda e: -e.rmse_per_scale) if sort else list(errors)
    colors = [
        GREY
        if e.layer in keep_float
        else RED
        if e.rmse_per_scale > 2 * IDEAL_RMSE_PER_SCALE
        else BLUE
        for e in items
    ]
    fig = go.Figure(
        go.Bar(
            x=[e.layer for e in items],
            y=[e.rmse_per_scale for e in items],
            marker_color=colors,
            customdata=[[e.rmse, e.scale, e.tensor] for e in items],
            hovertemplate="%{x}<br>RMSE/scale %{y:.3f}<br>RMSE %{customdata[0]:.3g}"
            "<br>scale %{customdata[1]:.3g}<br>%{customdata[2]}<extra></extra>",
        )
    )
    fig.add_hline(
        y=IDEAL_RMSE_PER_SCALE,
        line_color=GREEN,
        line_dash="dash",
        annotation_text="ideal rounding 1/√12 ≈ 0.29",
        annotation_position="top right",
    )
    fig.update_xaxes(tickangle=-40)
    fig.update_yaxes(title_text="RMSE / scale")
    return _layout(fig, "Per-layer error against float")


def affine_mapping(
    x: np.ndarray,
    q: np.ndarray,
    x_hat: np.ndarray,
    *,
    rmin: float,
    rmax: float,
    qmin: int,
    qmax: int,
) -> go.Figure:
    """The real line mapped to integers (left) and the error it leaves behind (right)."""
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=["real value → integer", "error (dequantized − real)"]
    )
    fig.add_trace(
        go.Scatter(x=x.tolist(), y=q.tolist(), mode="lines", line_color=BLUE, line_shape="hv"),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(x=x.tolist(), y=(x_hat - x).tolist(), mode="lines", line_color=RED), row=1, col=2
    )
    for edge in (rmin, rmax):
        for col in (1, 2):
            fig.add_vline(x=edge, line_color=ORANGE, line_dash="dash", row=1, col=col)
    for level in (qmin, qmax):
        fig.add_hline(y=level, line_color=GREY, line_dash="dot", row=1, col=1)
    fig.update_xaxes(title_text="real value")
    fig.update_yaxes(title_text="integer", row=1, col=1)
    return _layout(fig, "", height=300)
