"""Pure figure builders: plain data in, a `plotly.graph_objects.Figure` out.

Views keep one long-lived `Plot` each (`plot.py`) and hand it a freshly built figure.
Colours are the Okabe-Ito palette (safe for colour-blind readers: no red/green pairs), and
what a colour says is also said by a pattern, a legend or the hover text; every axis is titled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.qtyping import LayerError, VariantResult

IDEAL_RMSE_PER_SCALE = 1 / math.sqrt(12)  # uniform rounding error, in units of the scale
# Okabe-Ito: blue, orange, grey, vermillion, bluish green, then the rest for board variants.
BLUE, ORANGE, GREY, RED, GREEN = "#0072B2", "#E69F00", "#9aa5b1", "#D55E00", "#009E73"
VARIANT_COLOURS = (BLUE, ORANGE, GREEN, "#CC79A7", "#56B4E9", RED, "#F0E442", "#000000")
_MARGIN = {"l": 50, "r": 20, "t": 40, "b": 40}
LABEL_PX_PER_CHAR = 4.5  # height of a tick label at -40 degrees, per character (12 px font)


def titled(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    """`fig` with the workbench's title, height, margins and template (no legend)."""
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
    fig.update_yaxes(title_text="value")
    return titled(fig, title, layer_axis(fig, names))


def layer_axis(fig: go.Figure, names: Sequence[str], height: int = 320) -> int:
    """Put the layer names under the bars at -40 degrees; return the figure's height, grown
    by what the longest name takes, so long names (MobileNetV3's
    "expanded_conv_10_squeeze_excite_conv_1") do not squash the bars."""
    fig.update_xaxes(tickangle=-40, title_text="layer", automargin=True)
    longest = max((len(name) for name in names), default=0)
    return height + int(LABEL_PX_PER_CHAR * max(0, longest - 8))


def empty(title: str, message: str, height: int = 320) -> go.Figure:
    """A chart with nothing to show yet: the message instead of empty axes."""
    fig = go.Figure()
    fig.add_annotation(
        text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font_size=14
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return titled(fig, title, height)


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
                "colorscale": "Cividis",
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
    fig.update_yaxes(title_text="weight value")
    return titled(fig, title)


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
            marker_pattern_shape=["x" if c else "" for c in clipped],
            hovertemplate="%{x:.4g}: %{y} values<extra></extra>",
        )
    )
    for edge in (lo, hi):
        fig.add_vline(x=edge, line_color=ORANGE, line_dash="dash", line_width=2)
    share = counts_[clipped].sum() / total
    fig.update_yaxes(type="log", title_text="count")
    fig.update_xaxes(title_text="activation value (clipped bins hatched)")
    title = f"{layer}: activations, range [{lo:.3g}, {hi:.3g}], {share:.2%} of values clipped"
    return titled(fig, title)


def _percent(value: float | None) -> float | None:
    return None if value is None else 100 * value


def _interval_bar(estimate: Any) -> dict[str, Any] | None:
    """Plotly error bars drawing a 95 % interval around its value (None: no bars)."""
    if estimate is None:
        return None
    return {
        "type": "data",
        "symmetric": False,
        "array": [estimate.high - estimate.value],
        "arrayminus": [estimate.value - estimate.low],
        "color": "#1f2933",
    }


def board_chart(rows: Sequence[VariantResult], current_key: str | None = None) -> go.Figure:
    """Size, accuracy, agreement and latency of each variant side by side: one colour per
    variant, named in the legend (the current one marked), the numbers on the bars."""
    if not rows:
        return empty("", "The board fills in once the first variant is measured.", 260)
    columns: list[tuple[str, Any]] = [
        ("size (KB)", lambda row: row.size_bytes / 1024),
        ("accuracy (%, 95 % CI)", lambda row: _percent(row.accuracy)),
        ("agreement with float (%)", lambda row: _percent(row.agreement)),
        ("latency (ms, median)", lambda row: row.latency_ms),
    ]
    fig = make_subplots(rows=1, cols=4, subplot_titles=[title for title, _ in columns])
    for index, row in enumerate(rows):
        current = row.key == current_key
        name = f"{row.label} (current)" if current else row.label
        for col, (title, value) in enumerate(columns, start=1):
            y = value(row)
            estimate = row.accuracy_estimate if title.startswith("accuracy") else None
            fig.add_trace(
                go.Bar(
                    x=[index],
                    y=[y],
                    error_y=_interval_bar(estimate),
                    name=name,
                    legendgroup=row.key,
                    showlegend=col == 1,
                    marker_color=VARIANT_COLOURS[index % len(VARIANT_COLOURS)],
                    marker_line={"color": "#1f2933", "width": 2.5 if current else 0},
                    marker_pattern_shape="/" if current else "",
                    text=[_short(y)],
                    textposition="outside",
                    cliponaxis=False,
                    hovertemplate=f"{escape(row.label)}<br>{title}: %{{y:.4g}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(showticklabels=False, title_text="variant")
    titled(fig, "", height=300)
    fig.update_layout(
        showlegend=True,
        legend={"orientation": "h", "y": -0.15, "x": 0, "title": {"text": "variant"}},
        margin={"l": 40, "r": 10, "t": 30, "b": 10},
        barmode="overlay",
    )
    return fig


def _short(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.3g}"


def layer_error_chart(
    errors: Sequence[LayerError],
    *,
    sort: bool = True,
    keep_float: Sequence[str] = (),
    selected: str | None = None,
) -> go.Figure:
    """RMSE/scale per layer with the ideal-rounding reference line 1/sqrt(12); layers above
    twice that are vermillion and hatched, kept-float ones grey, the selected one outlined."""
    items = sorted(errors, key=lambda e: -e.rmse_per_scale) if sort else list(errors)
    high = [e.rmse_per_scale > 2 * IDEAL_RMSE_PER_SCALE for e in items]
    colors = [
        GREY if e.layer in keep_float else RED if above else BLUE
        for e, above in zip(items, high, strict=True)
    ]
    fig = go.Figure(
        go.Bar(
            x=[e.layer for e in items],
            y=[e.rmse_per_scale for e in items],
            marker={
                "color": colors,
                "pattern": {"shape": ["/" if above else "" for above in high]},
                "line": {
                    "color": "#1f2933",
                    "width": [2.5 if e.layer == selected else 0 for e in items],
                },
            },
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
    fig.update_yaxes(title_text="RMSE / scale")
    height = layer_axis(fig, [e.layer for e in items])
    return titled(fig, "Per-layer error against float", height)


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
    fig.update_yaxes(title_text="error", row=1, col=2)
    return titled(fig, "", height=300)
