"""What a search returns: every trial, the Pareto front, the chosen variant and its test report.

Frozen values; `save` writes the chosen `.tflite`, the LiteRT Quantizer recipe that makes it,
the front (every validated trial, Pareto points flagged) as JSON and CSV, and the whole result.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.files import write_atomically, write_bytes_atomically
from workbench.qtyping import QuantConfig
from workbench.search.config import Objective, SearchConfig
from workbench.statistics import Estimate


@dataclass(frozen=True)
class Trial:
    """One candidate: a real `.tflite` measured on the validation split (or why it failed)."""

    index: int
    step: str  # which part of the search proposed it
    config: QuantConfig
    size_bytes: int = 0
    latency_ms: float = float("nan")
    accuracy: Estimate | None = None  # on the validation split, percent
    drop: Estimate | None = None  # paired float - quantized on the same samples, points
    within: bool = False  # the drop's upper 95 % bound is at most max_drop
    cached: bool = False  # its validation outputs came from the session's cache
    seconds: float = 0.0
    error: str | None = None

    @property
    def validated(self) -> bool:
        return self.error is None and self.drop is not None

    @property
    def label(self) -> str:
        return self.config.label

    def objective(self, objective: Objective) -> float:
        return float(self.size_bytes) if objective is Objective.SIZE else self.latency_ms

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "step": self.step,
            "label": self.label,
            "key": self.config.key,
            "config": self.config.to_dict(),
            "layers": {name: p.value for name, p in self.config.layers.items()},
            "size_bytes": self.size_bytes,
            "latency_ms": self.latency_ms if self.validated else None,
            "accuracy": None if self.accuracy is None else self.accuracy.to_dict(),
            "drop": None if self.drop is None else self.drop.to_dict(),
            "within": self.within,
            "cached": self.cached,
            "seconds": self.seconds,
            "error": self.error,
        }

    def line(self) -> str:
        """One progress line: what was tried and what it measured."""
        if not self.validated:
            return f"trial {self.index:2d} {self.step:<10} {self.label}: failed: {self.error}"
        verdict = "within" if self.within else "over"
        return (
            f"trial {self.index:2d} {self.step:<10} {self.size_bytes / 1024:7.1f} KB "
            f"{self.latency_ms:7.3f} ms  acc {self.accuracy.value:6.2f} %  drop {self.drop} "
            f"{verdict}{' (cached)' if self.cached else ''}  {self.label}"
        )


@dataclass(frozen=True)
class TestReport:
    """The chosen variant on the test split: accuracy and paired drop with their intervals."""

    float_accuracy: Estimate
    accuracy: Estimate
    drop: Estimate

    def to_dict(self) -> dict[str, Any]:
        return {
            "float_accuracy": self.float_accuracy.to_dict(),
            "accuracy": self.accuracy.to_dict(),
            "drop": self.drop.to_dict(),
        }


FRONT_COLUMNS = (
    "index", "step", "label", "size_bytes", "latency_ms", "accuracy", "accuracy_low",
    "accuracy_high", "drop", "drop_low", "drop_high", "samples", "within", "pareto", "chosen",
    "cached", "layers",
)  # fmt: skip


@dataclass(frozen=True, repr=False)
class SearchResult:
    """Every trial in order, the chosen one (best so far when the search stopped early)."""

    config: SearchConfig
    model: str
    trials: tuple[Trial, ...]
    chosen: int | None  # index into trials
    status: str  # finished, budget, cancelled or "failed: <reason>"
    validations: int  # full validations run (cached ones not counted)
    seconds: float
    float_accuracy: Estimate | None  # float model on the validation split
    test: TestReport | None = None
    tflite: bytes = field(default=b"", compare=False)  # the chosen file
    recipe: tuple[dict[str, Any], ...] | None = None  # LiteRT Quantizer recipe of the chosen

    def __repr__(self) -> str:
        chosen = self.chosen_trial
        what = "nothing chosen" if chosen is None else f"chose {chosen.label!r}"
        return f"SearchResult({self.model!r}, {len(self.trials)} trials, {what}, {self.status})"

    @property
    def chosen_trial(self) -> Trial | None:
        return None if self.chosen is None else self.trials[self.chosen]

    @property
    def validated(self) -> tuple[Trial, ...]:
        return tuple(trial for trial in self.trials if trial.validated)

    @property
    def front(self) -> tuple[Trial, ...]:
        """The Pareto front of the validated trials: objective (size or latency) against
        validation accuracy; no other trial is both smaller/faster and more accurate."""
        return pareto_front(self.validated, self.config.objective)

    def rows(self) -> list[dict[str, Any]]:
        """One flat record per validated trial (the front file), Pareto points flagged."""
        on_front = {trial.index for trial in self.front}
        return [
            {
                "index": t.index,
                "step": t.step,
                "label": t.label,
                "size_bytes": t.size_bytes,
                "latency_ms": t.latency_ms,
                "accuracy": t.accuracy.value,
                "accuracy_low": t.accuracy.low,
                "accuracy_high": t.accuracy.high,
                "drop": t.drop.value,
                "drop_low": t.drop.low,
                "drop_high": t.drop.high,
                "samples": t.drop.samples,
                "within": t.within,
                "pareto": t.index in on_front,
                "chosen": t.index == self.chosen,
                "cached": t.cached,
                "layers": ";".join(f"{n}={p.value}" for n, p in t.config.layers.items()),
            }
            for t in self.validated
        ]

    def front_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, FRONT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows())
        return buffer.getvalue()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "search": self.config.to_dict(),
            "status": self.status,
            "validations": self.validations,
            "seconds": self.seconds,
            "float_accuracy": None
            if self.float_accuracy is None
            else self.float_accuracy.to_dict(),
            "chosen": self.chosen,
            "front": [trial.index for trial in self.front],
            "test": None if self.test is None else self.test.to_dict(),
            "recipe": None if self.recipe is None else list(self.recipe),
            "trials": [trial.to_dict() for trial in self.trials],
        }

    def save(self, folder: Path) -> dict[str, Path]:
        """Write chosen.tflite, chosen.recipe.json, front.json, front.csv and search.json."""
        folder = Path(folder)
        written = {
            "result": folder / "search.json",
            "front_json": folder / "front.json",
            "front_csv": folder / "front.csv",
        }
        _write_text(written["result"], _json(self.to_dict()))
        _write_text(written["front_json"], _json(self.rows()))
        _write_text(written["front_csv"], self.front_csv())
        if self.tflite:
            written["tflite"] = folder / "chosen.tflite"
            write_bytes_atomically(written["tflite"], self.tflite)
        if self.recipe is not None:
            written["recipe"] = folder / "chosen.recipe.json"
            _write_text(written["recipe"], _json(list(self.recipe)))
        return written


def _json(value: Any) -> str:
    """Strict JSON (no NaN or Infinity), indented, with a final newline."""
    return json.dumps(value, indent=2, allow_nan=False) + "\n"


def _write_text(path: Path, text: str) -> None:
    write_atomically(path, lambda temporary: Path(temporary).write_text(text))


def pareto_front(trials: tuple[Trial, ...], objective: Objective) -> tuple[Trial, ...]:
    """The trials no other trial beats on both the objective and validation accuracy."""

    def dominated(trial: Trial) -> bool:
        cost, accuracy = trial.objective(objective), trial.accuracy.value
        return any(
            other.objective(objective) <= cost
            and other.accuracy.value >= accuracy
            and (other.objective(objective) < cost or other.accuracy.value > accuracy)
            for other in trials
        )

    front = [trial for trial in trials if not dominated(trial)]
    return tuple(sorted(front, key=lambda trial: trial.objective(objective)))
