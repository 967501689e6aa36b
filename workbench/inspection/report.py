"""`Inspection`: everything `Session.inspect()` found in a model, as one frozen value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
