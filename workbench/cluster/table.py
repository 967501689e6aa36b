"""The sweep's tidy table: one row per model x variant, written as each row arrives.

A row is `VariantResult.to_dict()` plus the model (name, shipped content hash `model_key`,
workbench fingerprint), the data (name, fingerprint), the `.tflite` SHA-256, where and how long
it ran, and `error` (None, or the one-line reason the row has no numbers). JSON lines are
appended one whole line per row; the CSV is rewritten atomically after each row. With `resume`,
finished rows are read back and their tasks skipped; failed rows are run again.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from workbench.errors import DataError
from workbench.files import write_bytes_atomically
from workbench.qtyping import QuantConfig

HEAD = ("model", "model_key", "model_fingerprint", "data", "data_key")
TAIL = ("tflite_sha256", "worker", "worker_rss_mb", "task_s", "error")


def identity(model: Any, data: Any, config: QuantConfig) -> dict[str, Any]:
    """The first columns of a row: which model, data and configuration it is about."""
    return {
        "model": model.name,
        "model_key": model.key,
        "model_fingerprint": None,
        "data": data.name,
        "data_key": data.key,
        "label": config.label,
        "key": config.key,
        **config.to_dict(),
        "error": None,
    }


def row_key(row: dict[str, Any]) -> tuple[str, str, str]:
    """What identifies a row across runs: shipped model hash, config key, data fingerprint."""
    return (str(row["model_key"]), str(row["key"]), str(row["data_key"]))


def _columns(rows: Iterable[dict[str, Any]]) -> list[str]:
    names = list(HEAD)
    for row in rows:
        names += [name for name in row if name not in names and name not in TAIL]
    return names + list(TAIL)


def _read_json_lines(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a crash: that row runs again
            continue
        if not isinstance(rows[-1], dict) or "model_key" not in rows[-1]:
            raise DataError(f"{path}:{number}: not a sweep table row; give a sweep's --json file")
    return rows


def _read_csv(path: Path) -> list[dict[str, Any]]:
    with path.open(newline="") as handle:
        rows = [dict(row) for row in csv.DictReader(handle)]
    for row in rows:
        if "model_key" not in row:
            raise DataError(f"{path}: not a sweep table; give a sweep's --csv file")
        row["error"] = row.get("error") or None
    return rows


class SweepTable:
    """Rows of a sweep, appended to `json_path` (JSON lines) and `csv_path` as they come."""

    def __init__(
        self, json_path: Path | None = None, csv_path: Path | None = None, *, resume: bool = False
    ) -> None:
        self.json_path = None if json_path is None else Path(json_path)
        self.csv_path = None if csv_path is None else Path(csv_path)
        self.rows: list[dict[str, Any]] = []
        if resume:
            self.rows = [row for row in self._previous() if row.get("error") is None]
        self.resumed = len(self.rows)
        if self.json_path is not None:
            text = "".join(json.dumps(row, allow_nan=False) + "\n" for row in self.rows)
            write_bytes_atomically(self.json_path, text.encode())
        self._write_csv()

    def _previous(self) -> list[dict[str, Any]]:
        if self.json_path is None and self.csv_path is None:
            raise DataError("--resume: give the --json or --csv file of the sweep to resume")
        if self.json_path is not None and self.json_path.exists():
            return _read_json_lines(self.json_path)
        if self.csv_path is not None and self.csv_path.exists():
            return _read_csv(self.csv_path)
        return []

    @property
    def done(self) -> set[tuple[str, str, str]]:
        """Keys of the rows that have numbers (their tasks are not run again)."""
        return {row_key(row) for row in self.rows if row.get("error") is None}

    def add(self, row: dict[str, Any]) -> None:
        """Keep `row` and write it out: one appended JSON line, a rewritten CSV."""
        self.rows.append(row)
        if self.json_path is not None:
            line = (json.dumps(row, allow_nan=False) + "\n").encode()
            descriptor = os.open(self.json_path, os.O_WRONLY | os.O_APPEND)
            try:
                os.write(descriptor, line)  # one write: a crash leaves whole lines
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        self._write_csv()

    def _write_csv(self) -> None:
        if self.csv_path is None:
            return
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=_columns(self.rows), lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow(
                {
                    name: json.dumps(value) if isinstance(value, list | dict) else value
                    for name, value in row.items()
                }
            )
        write_bytes_atomically(self.csv_path, buffer.getvalue().encode())

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        failed = sum(row.get("error") is not None for row in self.rows)
        return f"SweepTable({len(self.rows)} rows, {failed} failed)"
