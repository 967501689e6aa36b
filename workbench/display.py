"""Results that display themselves in a notebook: an HTML table, and a pandas DataFrame.

`Comparison` is the list `Session.compare` returns: one `VariantResult` per variant, shown as a
table with accuracy and drop next to their 95 % intervals; `to_frame()` gives the same numbers
as a DataFrame (columns carry their unit: `_pct`, `_pt`, `_kb`, `_db`, `_ms`). pandas is
imported only when a frame is asked for.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from workbench.qtyping import VariantResult
from workbench.statistics import Estimate

_STYLE = (
    "border-collapse:collapse;font-variant-numeric:tabular-nums;"
    "font-family:var(--jp-content-font-family, sans-serif)"
)


def html_table(
    header: Sequence[str], rows: Iterable[Sequence[Any]], caption: str = "", note: str = ""
) -> str:
    """A plain HTML table (first column left, the others right aligned); cells are escaped."""
    head = "".join(
        f'<th style="text-align:{"left" if i == 0 else "right"};padding:2px 8px">{escape(h)}</th>'
        for i, h in enumerate(header)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td style="text-align:{"left" if i == 0 else "right"};padding:2px 8px">'
            f"{escape(str(cell))}</td>"
            for i, cell in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    title = f"<caption style='text-align:left'>{escape(caption)}</caption>" if caption else ""
    footer = f"<p style='font-size:smaller'>{escape(note)}</p>" if note else ""
    return (
        f'<table style="{_STYLE}">{title}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>{footer}"
    )


def interval_text(estimate: Estimate | None, sign: bool = False, digits: int = 2) -> str:
    """A value with its 95 % interval, e.g. ``+0.30 [-0.22, 0.82]`` (`sign`: the value signed;
    "-" when there is none)."""
    if estimate is None:
        return "-"
    return f"{estimate.value:{'+' if sign else ''}.{digits}f} {bounds_text(estimate, digits)}"


def bounds_text(estimate: Estimate, digits: int = 2) -> str:
    """The 95 % interval alone, e.g. ``[-0.22, 0.82]``."""
    return f"[{estimate.low:.{digits}f}, {estimate.high:.{digits}f}]"


def _snr(value: float) -> str:
    if value == math.inf:
        return "identical"
    return f"{value:.1f} dB" if math.isfinite(value) else "-"


class Comparison(list[VariantResult]):
    """Measured variants, float32 first: a list that shows itself as a table."""

    def _repr_html_(self) -> str:
        rows = [
            (
                r.label,
                "unavailable" if r.missing("conversion") else f"{r.size_bytes / 1024:.1f} KB",
                "unavailable" if r.missing("conversion") else f"{r.size_ratio:.2f}",
                interval_text(r.accuracy_estimate),
                interval_text(r.drop_estimate, sign=True),
                "-" if r.agreement is None else f"{100 * r.agreement:.1f} %",
                _snr(r.snr_db),
                "unavailable"
                if r.missing("latency")
                else f"{r.latency_ms:.3f} ± {r.latency_spread_ms / 2:.3f} ms",
            )
            for r in self
        ]
        refused = [f"{r.label}: {u}" for r in self for u in r.unavailable]
        samples = sorted({r.samples for r in self})
        note = (
            "accuracy in %, drop in points (float model minus variant, paired on the same "
            f"samples), both with 95 % intervals; {', '.join(map(str, samples))} test samples; "
            "latency: median ± half the interquartile range of single-sample invokes"
            + "".join(f". {line}" for line in refused)
        )
        header = (
            "variant",
            "size",
            "ratio",
            "accuracy",
            "drop",
            "agreement",
            "output SNR",
            "latency",
        )
        return html_table(header, rows, note=note)

    def to_frame(self) -> Any:
        """A pandas DataFrame, one row per variant, indexed by label."""
        import pandas as pd

        return pd.DataFrame([_row(r) for r in self]).set_index("label")


def _row(result: VariantResult) -> dict[str, Any]:
    config = result.config
    accuracy, drop = result.accuracy_estimate, result.drop_estimate
    return {
        "label": result.label,
        "route": config.route.value,
        "mode": config.mode.value,
        "granularity": config.granularity.value if config.mode.has_granularity else None,
        "io_type": config.io_type.value,
        "keep_float": ", ".join(sorted(config.keep_float)),
        "calibration_samples": config.calibration_samples,
        "size_kb": result.size_bytes / 1024,
        "size_ratio": result.size_ratio,
        "accuracy_pct": None if accuracy is None else accuracy.value,
        "accuracy_low_pct": None if accuracy is None else accuracy.low,
        "accuracy_high_pct": None if accuracy is None else accuracy.high,
        "drop_pt": None if drop is None else drop.value,
        "drop_low_pt": None if drop is None else drop.low,
        "drop_high_pt": None if drop is None else drop.high,
        "agreement_pct": None if result.agreement is None else 100 * result.agreement,
        "snr_db": result.snr_db,
        "cosine": result.cosine,
        "latency_ms": result.latency_ms,
        "latency_spread_ms": result.latency_spread_ms,
        "samples": result.samples,
        "unavailable": "; ".join(str(u) for u in result.unavailable),
    }
