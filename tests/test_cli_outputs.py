"""Output paths: refused before any work with one `error:` line, written all or nothing."""

import os
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.commands.compare import file_name
from workbench.qtyping import QuantConfig


def unwritable_folder(tmp_path: Path) -> Path:
    """A folder this process cannot create files in (root ignores mode bits: use sysfs)."""
    if os.getuid() == 0:
        return Path("/sys")
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o555)
    return folder


CASES = {
    # The model does not exist: an error about the output proves it was checked first.
    "json-is-a-folder": (["compare", "no_such_model", "--json", "{d}"], "--json", "is a folder"),
    "json-under-a-file": (
        ["compare", "no_such_model", "--json", "{d}/notes.txt/x.json"],
        "--json",
        "is a file, not a folder",
    ),
    "json-empty": (["compare", "no_such_model", "--json", ""], "--json", "empty path"),
    "json-unwritable": (
        ["inspect", "no_such_model", "--json", "{locked}/stats.json"],
        "--json",
        "cannot write in",
    ),
    "output-is-a-folder": (["convert", "no_such_model", "-o", "{d}"], "-o", "is a folder"),
    "output-empty": (["convert", "no_such_model", "-o", " "], "-o", "empty path"),
    "output-under-a-file": (
        ["convert", "no_such_model", "-o", "{d}/notes.txt/deeper/x.tflite"],
        "-o",
        "notes.txt is a file",
    ),
    "save-dir-is-a-file": (
        ["compare", "no_such_model", "--save-dir", "{d}/notes.txt"],
        "--save-dir",
        "is a file, not a folder",
    ),
    "save-dir-under-a-file": (
        ["compare", "no_such_model", "--save-dir", "{d}/notes.txt/variants"],
        "--save-dir",
        "is a file, not a folder",
    ),
    "save-dir-unwritable": (
        ["compare", "no_such_model", "--save-dir", "{locked}/variants"],
        "--save-dir",
        "cannot write in",
    ),
}


@pytest.mark.parametrize(("argv", "option", "message"), CASES.values(), ids=CASES.keys())
def test_bad_output_path_is_refused_before_any_work(tmp_path, capsys, argv, option, message):
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    locked = unwritable_folder(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    argv = [arg.format(d=tmp_path, locked=locked) for arg in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"error: {option}") and message in err[0], err[0]
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, no folder created


def test_a_failing_later_output_leaves_no_results_file(tmp_path, capsys):
    """--json is fine, but one .tflite cannot be written: neither is left behind."""
    out, saved = tmp_path / "results.json", tmp_path / "variants"
    blocked = saved / file_name("digits_cnn", QuantConfig(mode="float32"))
    blocked.mkdir(parents=True)  # a folder where the float32 file must go
    argv = ["compare", "digits_cnn", "--modes", "float32", "--json", str(out)]
    assert main([*argv, "--save-dir", str(saved), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and blocked.name in err[0], err
    assert not out.exists()
    assert [p.relative_to(tmp_path) for p in sorted(tmp_path.rglob("*"))] == [
        Path("variants"),
        blocked.relative_to(tmp_path),
    ]  # no temporary (.NAME.XXXX.SUFFIX) left either


def test_missing_output_folders_are_created_only_when_writing(tmp_path, capsys):
    out = tmp_path / "new" / "deeper" / "stats.json"
    assert main(["inspect", "digits_cnn", "--json", str(out), "--quiet"]) == 0
    assert out.is_file() and sorted(p.name for p in out.parent.iterdir()) == ["stats.json"]
