"""`SearchConfig`: what a search looks for and how much it may spend, as a frozen value."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from workbench.errors import UnsupportedError

SEARCH_VERSION = 1


class Objective(StrEnum):
    """What the search minimises among the variants within the accuracy budget."""

    SIZE = "size"  # bytes of the .tflite file
    LATENCY = "latency"  # median single-sample invoke on the LiteRT interpreter


@dataclass(frozen=True)
class SearchConfig:
    """Objective, the largest accepted accuracy drop (points), the budget, the seed.

    A variant is within the drop when the upper end of the 95 % interval of its paired accuracy
    difference against float, on the validation split, is at most `max_drop`. The budget is a
    number of full validations (`budget`), a time in seconds (`seconds`), or both (whichever
    runs out first); `None` leaves that one unbounded, but not both. `seed` orders layers whose
    ranks tie, so one seed always tries the same candidates.
    """

    objective: Objective = Objective.SIZE
    max_drop: float = 1.0
    budget: int | None = 20
    seconds: float | None = None
    seed: int = 0
    calibration_samples: int = 200
    version: int = SEARCH_VERSION

    def __post_init__(self) -> None:
        try:
            objective = Objective(self.objective)
        except ValueError:
            choices = ", ".join(o.value for o in Objective)
            raise UnsupportedError(
                f"objective: {self.objective!r} is not one of {choices}"
            ) from None
        max_drop = _number(self.max_drop, "max_drop")
        if max_drop < 0:
            raise UnsupportedError(
                f"max_drop: {max_drop:g} is below 0; give the accepted accuracy drop in "
                "points (1.0 = one percentage point)"
            )
        if self.budget is None and self.seconds is None:
            raise UnsupportedError("budget: give a number of validations, seconds, or both")
        budget = None if self.budget is None else int(self.budget)
        if budget is not None and budget < 1:
            raise UnsupportedError(
                f"budget: {budget} validations leave nothing to try; give 1 or more"
            )
        seconds = None if self.seconds is None else _number(self.seconds, "seconds")
        if seconds is not None and seconds <= 0:
            raise UnsupportedError(f"seconds: {seconds:g} leaves no time; give a positive time")
        if int(self.calibration_samples) < 1:
            raise UnsupportedError("calibration_samples: give a positive number of samples")
        for name, value in (
            ("objective", objective),
            ("max_drop", max_drop),
            ("budget", budget),
            ("seconds", seconds),
            ("seed", int(self.seed)),
            ("calibration_samples", int(self.calibration_samples)),
        ):
            object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "objective": self.objective.value,
            "max_drop": self.max_drop,
            "budget": self.budget,
            "seconds": self.seconds,
            "seed": self.seed,
            "calibration_samples": self.calibration_samples,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchConfig:
        return cls(**data)

    def replace(self, **changes: Any) -> SearchConfig:
        """A copy with some fields changed (validated like a new configuration)."""
        return SearchConfig.from_dict({**self.to_dict(), **changes})


def _number(value: Any, argument: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UnsupportedError(f"{argument}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise UnsupportedError(f"{argument}: {value!r} is not a finite number")
    return number
