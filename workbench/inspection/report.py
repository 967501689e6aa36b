"""`Inspection`: everything `Session.inspect()` found in a model, as one frozen value."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

import numpy as np

from workbench.inspection.activations import ActivationRange
from workbench.inspection.layers import LayerRow
from workbench.inspection.weights import WeightStats


@dataclass(frozen=True, eq=False)
class Inspection:
    """The layer table, weight statistics and activation ranges of a model.

    A part that cannot be had is empty and `message` says why (no data for activation ranges,
    a SavedModel the statistics cannot read); `activations_measured` tells an empty list of
    ranges from ranges that were never measured.
    """

    layers: tuple[LayerRow, ...] = ()
    weights: tuple[WeightStats, ...] = ()
    activations: tuple[ActivationRange, ...] = ()
    activations_measured: bool = False
    message: str = ""

    def __repr__(self) -> str:
        ranges = len(self.activations) if self.activations_measured else "no"
        note = f", {self.message!r}" if self.message else ""
        return (
            f"Inspection({len(self.layers)} layers, {len(self.weights)} kernels, "
            f"{ranges} activation ranges{note})"
        )

    def rows(self, part: str = "layers") -> list[dict[str, Any]]:
        """Flat rows of one part: "layers", "weights" or "activations"."""
        if part not in PARTS:
            raise ValueError(f"part: {part!r} is not one of {', '.join(PARTS)}")
        return [PARTS[part](item) for item in getattr(self, part)]

    def to_frame(self, part: str = "layers") -> Any:
        """A pandas DataFrame of one part: "layers" (default), "weights" or "activations"."""
        import pandas as pd

        rows = self.rows(part)
        return pd.DataFrame(rows, columns=list(_COLUMNS[part])).set_index(_COLUMNS[part][0])

    def _repr_html_(self) -> str:
        from workbench.display import html_table

        parts = []
        for part, caption in _CAPTIONS.items():
            rows = self.rows(part)
            if rows:
                cells = [[_cell(row[c]) for c in _COLUMNS[part]] for row in rows]
                parts.append(html_table(_COLUMNS[part], cells, caption=caption))
        if self.message:
            parts.append(f"<p>{escape(self.message)}</p>")
        return "".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record (activations null when they were not measured)."""
        return {
            "layers": [row.to_dict() for row in self.layers],
            "weights": [stats.to_dict() for stats in self.weights],
            "activations": (
                [item.to_dict() for item in self.activations] if self.activations_measured else None
            ),
            "message": self.message,
        }


def _layer_row(row: LayerRow) -> dict[str, Any]:
    return row.to_dict()


def _weight_row(item: WeightStats) -> dict[str, Any]:
    channels = np.array([stats.absmax for stats in item.per_channel])
    spread = float(channels.max() / np.median(channels)) if channels.size else None
    return {
        "layer": item.layer,
        "kind": item.kind,
        "shape": "x".join(map(str, item.shape)),
        # a kernel the converter changes in a way not modelled shows no numbers
        "min": None if item.per_tensor is None else item.per_tensor.min,
        "max": None if item.per_tensor is None else item.per_tensor.max,
        "channels": int(channels.size),
        # how far the widest channel is from a typical one: what per-tensor int8 costs
        "widest_over_median": spread,
        "folded_from": item.folded_from,
        "not_predicted": item.not_predicted,
    }


def _activation_row(item: ActivationRange) -> dict[str, Any]:
    return {
        "layer": item.layer,
        "type": item.type,
        "min": item.min,
        "max": item.max,
        "p0.1": item.percentiles[0.1],
        "p99.9": item.percentiles[99.9],
    }


PARTS = {"layers": _layer_row, "weights": _weight_row, "activations": _activation_row}
_COLUMNS = {
    "layers": (
        "name",
        "type",
        "params",
        "bytes_float32",
        "bytes_float16",
        "bytes_int8",
        "folded_into",
    ),
    "weights": (
        "layer",
        "kind",
        "shape",
        "min",
        "max",
        "channels",
        "widest_over_median",
        "folded_from",
        "not_predicted",
    ),
    "activations": ("layer", "type", "min", "max", "p0.1", "p99.9"),
}
_CAPTIONS = {
    "layers": "Layers (bytes of their weights at each precision)",
    "weights": (
        "Weights as the converter quantizes them, BatchNorm and constants folded (per tensor; "
        "widest channel over the median one)"
    ),
    "activations": "Activation ranges on the calibration data",
}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
