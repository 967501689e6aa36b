"""Pure HTML builders for tables, status and download links (strings in, strings out).

Rows carry `data-*` attributes (key, role, label) so browser tests select them reliably.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from workbench.display import interval_text
from workbench.qtyping import VariantResult
from workbench.statistics import Estimate
from workbench.widgets.tasks import TaskStatus

BOARD_COLUMNS = (
    ("size", "size KB"),
    ("ratio", "× float"),
    ("accuracy", "accuracy % [95 % CI]"),
    ("drop", "drop pts [95 % CI]"),
    ("samples", "samples"),
    ("agreement", "agreement %"),
    ("snr", "SNR dB"),
    ("latency", "latency ms (IQR)"),
    ("convert", "convert s"),
)
CSV_FIELDS = (
    "label",
    "key",
    "route",
    "mode",
    "granularity",
    "io_type",
    "calibration_samples",
    "keep_float",
    "size_bytes",
    "size_ratio",
    "accuracy",
    "accuracy_drop",
    "agreement",
    "snr_db",
    "cosine",
    "latency_ms",
    "latency_spread_ms",
    "threads",
    "convert_s",
)
_STATUS_ICONS = {
    "idle": "○",
    "queued": "◔",
    "converting": "◑",
    "evaluating": "◕",
    "done": "●",
    "failed": "✖",
    "cancelled": "○",
}


def _fmt(value: float | None, digits: int = 1, scale: float = 1.0) -> str:
    return "–" if value is None else f"{value * scale:.{digits}f}"


def latency_text(median_ms: float, spread_ms: float) -> str:
    """The median with its interquartile range, to the precision the spread allows."""
    if not math.isfinite(median_ms):  # refused by the runtime
        return "–"
    if spread_ms > 0:
        digits = min(3, max(0, -math.floor(math.log10(spread_ms))))
    else:
        digits = 3
    return f"{median_ms:.{digits}f} ({spread_ms:.{digits}f})"


def within_noise(row: VariantResult, baseline: VariantResult) -> bool:
    """Whether two latencies cannot be told apart: their interquartile ranges overlap."""
    gap = abs(row.latency_ms - baseline.latency_ms)
    return gap <= (row.latency_spread_ms + baseline.latency_spread_ms) / 2


def _with_interval(estimate: Estimate | None, digits: int, sign: bool = False) -> str:
    return "–" if estimate is None else interval_text(estimate, sign, digits)


def drop_within_noise(row: VariantResult) -> bool:
    """Whether the paired difference float minus this variant cannot be told from zero: its
    95 % interval includes 0."""
    return row.drop_estimate is not None and row.drop_estimate.contains(0.0)


def board_cells(row: VariantResult) -> dict[str, str]:
    """The formatted numbers of one board row, by column name ("unavailable" where the runtime
    refused the measurement); accuracy and drop with their 95 % intervals."""
    cells = {
        "size": _fmt(row.size_bytes / 1024),
        "ratio": _fmt(row.size_ratio, 2),
        "accuracy": (
            _with_interval(row.accuracy_estimate, 1)
            if row.accuracy_estimate is not None
            else _fmt(row.accuracy, 1, 100)
        ),
        "drop": _with_interval(row.drop_estimate, 1, sign=True),
        "samples": str(row.samples),
        "agreement": _fmt(row.agreement, 1, 100),
        "snr": _fmt(row.snr_db, 1),
        "latency": latency_text(row.latency_ms, row.latency_spread_ms),
        "convert": _fmt(row.convert_s, 2),
    }
    refused = {
        "conversion": ("size", "ratio", "convert"),
        "evaluation": ("accuracy", "drop", "samples", "agreement", "snr"),
        "latency": ("latency",),
    }
    for measurement, columns in refused.items():
        if row.missing(measurement):
            cells.update(dict.fromkeys(columns, "unavailable"))
    return cells


def board_table(
    rows: Sequence[VariantResult],
    *,
    current_key: str | None,
    pinned_keys: Sequence[str] = (),
    previous_key: str | None = None,
    failed: tuple[str, str] | None = None,
    partial_of: int | None = None,
) -> str:
    """The comparison table: float32 baseline first, current variant highlighted.

    `current_key` is the configuration asked for; until it is measured the variant shown
    before is marked `previous_key`; `failed` is (label, message) when the asked one failed.
    `partial_of` is the test sample count of the full result when the current row rests on
    fewer (`data-partial="1"`: more samples are being measured). Latencies within the noise
    of the baseline's, and drops whose interval includes 0, are marked ≈.
    """
    if not rows and failed is None:
        return '<div class="wb-help wb-board-empty">No variant measured yet.</div>'
    head = "".join(f"<th>{escape(title)}</th>" for _, title in BOARD_COLUMNS)
    body = []
    baseline = rows[0] if rows else None
    for index, row in enumerate(rows):
        key = row.key
        role = "current" if key == current_key else "pinned" if key in pinned_keys else ""
        role = role or ("baseline" if index == 0 else "previous" if key == previous_key else "")
        role = role or "other"
        cells = board_cells(row)
        if index and baseline is not None and within_noise(row, baseline):
            cells["latency"] += (
                f' <abbr title="within the noise of {escape(baseline.label)}: '
                'the interquartile ranges overlap">≈</abbr>'
            )
        if index and drop_within_noise(row):
            cells["drop"] += (
                ' <abbr class="wb-noise" title="within noise: the 95 % interval of the paired '
                'difference includes 0">≈</abbr>'
            )
        partial = key == current_key and partial_of is not None
        if partial:
            cells["samples"] += f" of {partial_of} …"
        tds = "".join(f'<td data-col="{name}">{cells[name]}</td>' for name, _ in BOARD_COLUMNS)
        body.append(
            f'<tr data-key="{key}" data-role="{role}" data-label="{escape(row.label)}" '
            f'data-partial="{int(partial)}" data-samples="{row.samples}">'
            f'<th class="wb-variant">{escape(row.label)}'
            f'<span class="wb-role">{"" if role == "other" else role}</span></th>{tds}</tr>'
        )
    if failed is not None:
        label, message = failed
        body.append(
            f'<tr data-role="failed" data-label="{escape(label)}">'
            f'<th class="wb-variant">{escape(label)}<span class="wb-role">failed</span></th>'
            f'<td class="wb-failed" colspan="{len(BOARD_COLUMNS)}">{escape(message)}</td></tr>'
        )
    refused = "".join(
        f"<li>{escape(row.label)}: {escape(str(u))}</li>"
        for row in rows
        for u in row.unavailable
        if not u.measurement.startswith("layer")  # the layer-error chart lists those
    )
    return (
        '<div class="wb-scroll"><table class="wb-board-table"><thead><tr><th>variant</th>'
        f"{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
        + (f'<ul class="wb-help wb-board-unavailable">{refused}</ul>' if refused else "")
        + '<div class="wb-help">accuracy and drop (float minus variant, paired on the same test '
        "samples) with their 95 % intervals; latency: median of single-sample runs "
        "(interquartile range) in ms; ≈ marks a drop or a latency within the noise (a drop "
        "whose interval includes 0, a latency whose range overlaps the baseline's); a row "
        "measured on the first samples only says so (… more are being measured).</div>"
    )


def comparison_csv(rows: Sequence[VariantResult]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        record = row.to_dict()
        record["keep_float"] = " ".join(record["keep_float"])
        writer.writerow(record)
    return buffer.getvalue()


def comparison_json(rows: Sequence[VariantResult]) -> str:
    return json.dumps([row.to_dict() for row in rows], indent=2)


def download_link(data: bytes, filename: str, text: str, mime: str) -> str:
    """An anchor that saves `data` as `filename` (a data URI: works in Jupyter and Voila)."""
    encoded = base64.b64encode(data).decode("ascii")
    return (
        f'<a class="wb-download" download="{escape(filename)}" '
        f'href="data:{mime};base64,{encoded}">{escape(text)}</a>'
    )


def status_line(
    status: TaskStatus,
    pending: bool = False,
    detail: TaskStatus | None = None,
    warmup: TaskStatus | None = None,
) -> str:
    """One line: icon, state, what, and the error message when it failed; then what the
    detail worker (per-layer error, ranges) and the warm-up are doing, if anything.
    `data-idle` is 1 when nothing runs in the background."""
    icon = _STATUS_ICONS[status.state.value]
    what = f" — {escape(status.label)}" if status.label else ""
    message = f": {escape(status.message)}" if status.message else ""
    seconds = f" ({status.seconds:.2f} s)" if status.seconds and not status.state.busy else ""
    running = [s for s in (status, detail, warmup) if s is not None and s.state.busy]
    pending = pending and status.state.value not in ("failed", "cancelled")  # nothing will come
    warming = _detail(warmup) if warmup is not None and warmup.state.busy else ""
    return (
        f'<div class="wb-status-line" data-state="{status.state.value}" '
        f'data-generation="{status.generation}" data-pending="{int(pending)}" '
        f'data-idle="{int(not running and not pending)}">'
        f"{icon} <b>{status.state.value}</b>{what}{message}{seconds}{_detail(detail)}{warming}"
        "</div>"
    )


def _detail(status: TaskStatus | None) -> str:
    if status is None or not (status.state.busy or status.state.value == "failed"):
        return ""
    text = f"{status.state.value}: {status.message}" if status.message else status.state.value
    return f' <span class="wb-detail-status">· {escape(text)}</span>'


def key_value_table(items: Mapping[str, Any], css: str) -> str:
    rows = "".join(
        f"<tr><th>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>" for k, v in items.items()
    )
    return f'<table class="{css}">{rows}</table>'


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], css: str) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return (
        f'<div class="wb-scroll"><table class="{css}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


STYLE = """<style>
.wb-app { max-width: 100%; min-width: 0; }
.wb-app table { border-collapse: collapse; font-size: 13px; margin: 4px 0; }
.wb-app th, .wb-app td { padding: 3px 8px; border-bottom: 1px solid #e3e7eb; text-align: right; }
.wb-app th.wb-variant, .wb-app thead th:first-child { text-align: left; }
.wb-app .wb-board-table td { white-space: nowrap; padding: 3px 5px; }
.wb-app .wb-board-table th { padding: 3px 5px; }
.wb-app .wb-scroll { max-width: 100%; overflow-x: auto; }
.wb-app .wb-quantized-ops td, .wb-app .wb-quantized-layers td:first-child {
  text-align: left; overflow-wrap: anywhere; word-break: break-word; max-width: 28em; }
.wb-app tr[data-role="current"] { background: #fff4e5; font-weight: 600; }
.wb-app tr[data-role="current"] th.wb-variant { border-left: 4px solid #1f2933; }
.wb-app tr[data-role="baseline"] { background: #f4f6f8; }
.wb-app tr[data-role="failed"] td { color: #a6341b; text-align: left; white-space: normal; }
.wb-app .wb-role { color: #52606d; font-size: 11px; margin-left: 6px; font-weight: normal; }
.wb-app .wb-status-bar { width: 100%; align-items: flex-start; }
.wb-app .wb-status { flex: 1 1 0; min-width: 0; }
.wb-app .wb-status-line { font-size: 14px; padding: 4px 0; overflow-wrap: anywhere; }
.wb-app .wb-cancel { flex: 0 0 auto; min-width: 6.5em; }
.wb-app .wb-status-line[data-state="failed"] { color: #a6341b; }
.wb-app .wb-download { margin-right: 12px; }
.wb-app h3 { margin: 14px 0 4px 0; }
.wb-app .wb-help { color: #52606d; font-size: 13px; }
.wb-app .widget-toggle-button.mod-active { font-weight: 700;
  box-shadow: inset 0 -3px 0 #1f2933, 0 0 0 1px #1f2933; }
.wb-app .widget-toggle-button.mod-active::before { content: "✓ "; }
.wb-app .modebar-container { display: none; }
.wb-app .wb-plot { min-width: 0; width: 100%; margin-left: 0; margin-right: 0; }
</style>"""
