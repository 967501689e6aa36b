"""`workbench compare` end to end on digits_cnn: table, JSON records, saved files, bad options."""

import json

import pytest

from workbench.cli import main
from workbench.qtyping import QuantConfig, VariantResult
from workbench.tflite_file import read_tflite

KEYS = {
    "label", "route", "mode", "granularity", "size_bytes", "size_ratio", "accuracy",
    "accuracy_drop", "agreement", "latency_ms", "convert_s",
}  # fmt: skip


def test_compare_writes_json_and_files(tmp_path, capsys):
    out, saved = tmp_path / "results.json", tmp_path / "variants"
    argv = ["compare", "digits_cnn", "--modes", "float32,int8", "--granularity",
            "per-channel,per-tensor", "--samples", "100", "--json", str(out),
            "--save-dir", str(saved)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "variant" in printed and "int8 · per-tensor" in printed
    kernels = printed.split("kernels (from the file, checked on the interpreter):\n")[1]
    assert kernels.splitlines()[1].startswith("int8 · per-channel: ")
    records = json.loads(out.read_text())
    assert [r["label"] for r in records] == ["float32", "int8 · per-channel", "int8 · per-tensor"]
    assert all(KEYS <= set(r) for r in records)
    baseline, channel, tensor = records
    assert baseline["size_ratio"] == 1.0 and baseline["accuracy_drop"] == 0.0
    assert channel["size_ratio"] < 0.4 and channel["accuracy"] > 0.9
    assert channel["granularity"] == "per-channel" and tensor["granularity"] == "per-tensor"
    assert all(r["latency_ms"] > 0 and r["convert_s"] >= 0 for r in records)
    configs = [QuantConfig.from_dict(r) for r in records]  # the records read back
    assert [c.key for c in configs] == [r["key"] for r in records]
    assert [VariantResult.from_dict(r).to_dict() for r in records] == records
    files = sorted(saved.iterdir())  # temporaries would be hidden .NAME.XXXXXXXX.tflite files
    assert len(files) == 3 and all(p.suffix == ".tflite" and p.name[0] != "." for p in files)
    sizes = {path.stat().st_size for path in files}
    assert sizes == {r["size_bytes"] for r in records}
    assert all(read_tflite(path.read_bytes()).ops for path in files)


def test_compare_rejects_bad_options(tmp_path, capsys):
    out = tmp_path / "never.json"
    assert main(["compare", "digits_cnn", "--modes", "int7", "--json", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: --modes") and "int8" in error and "\n" not in error
    assert not out.exists()


def test_compare_tflite_input_writes_strict_json(tmp_path, digits_model):
    """float32 of a .tflite equals its own reference: SNR is inf, written as null, not Infinity."""
    from workbench.engine.routes import float_tflite

    model = tmp_path / "digits.tflite"
    model.write_bytes(float_tflite(digits_model))
    out = tmp_path / "results.json"
    argv = ["compare", str(model), "--data", "digits", "--route", "litert", "--modes", "float32"]
    assert main([*argv, "--json", str(out)]) == 0

    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    (record,) = json.loads(out.read_text(), parse_constant=refuse)
    assert record["snr_db"] is None and record["agreement"] == 1.0


def test_test_samples_option_heading_and_intervals(tmp_path, capsys):
    """`--test-samples` measures the first N test samples and says so; accuracy and drop carry
    their 95 % intervals, the same ones the JSON records hold."""
    out = tmp_path / "r.json"
    argv = ["compare", "digits_cnn", "--modes", "int8", "--test-samples", "150", "--json", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == (
        "digits_cnn on digits, 150 test samples (the first 150 of 400; --test-samples all for "
        "every one)"
    )
    records = json.loads(out.read_text())
    assert {r["samples"] for r in records} == {150}
    int8 = next(line for line in printed if line.startswith("int8"))
    low, high = records[1]["accuracy_estimate"]["low"], records[1]["accuracy_estimate"]["high"]
    assert f"[{low:.2f}, {high:.2f}]" in int8
    with pytest.raises(SystemExit) as exit:
        main(["compare", "digits_cnn", "--test-samples", "0"])
    assert exit.value.code == 2 and "--test-samples" in capsys.readouterr().err
