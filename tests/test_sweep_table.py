"""The sweep's tidy table on its own: rows written as they come, resume from JSON lines or CSV."""

import json

import pytest

from workbench.cluster.table import SweepTable, row_key
from workbench.errors import DataError


def _row(key: str, error: str | None = None, **numbers) -> dict:
    return {"model": "m", "model_key": "mk", "model_fingerprint": "fp", "data": "d",
            "data_key": "dk", "label": key, "key": key, **numbers, "error": error}  # fmt: skip


def test_rows_are_written_as_they_come_and_resume_skips_finished_ones(tmp_path):
    lines, table_csv = tmp_path / "rows.jsonl", tmp_path / "rows.csv"
    table = SweepTable(lines, table_csv)
    table.add(_row("a", accuracy=0.5, snr_db=None, layer_errors=[]))
    assert json.loads(lines.read_text())["accuracy"] == 0.5
    table.add(_row("b", error="model 'm': refused"))
    assert table_csv.read_text().splitlines()[0].startswith("model,model_key,")
    with lines.open("a") as handle:
        handle.write('{"model": "m", "model_ke')  # a line cut short by a crash
    resumed = SweepTable(lines, table_csv, resume=True)
    assert resumed.resumed == 1 and resumed.done == {("mk", "a", "dk")}
    assert [row["key"] for row in map(json.loads, lines.read_text().splitlines())] == ["a"]
    from_csv = SweepTable(None, table_csv, resume=True)
    assert [row_key(row) for row in from_csv.rows] == [("mk", "a", "dk")]
    assert from_csv.rows[0]["error"] is None


def test_resume_needs_a_table_file_and_refuses_other_files(tmp_path):
    with pytest.raises(DataError, match="--resume"):
        SweepTable(resume=True)
    other = tmp_path / "other.jsonl"
    other.write_text('{"hello": 1}\n')
    with pytest.raises(DataError, match="other.jsonl:1: not a sweep table row"):
        SweepTable(other, resume=True)
