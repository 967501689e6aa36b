"""`workbench inspect`, run in-process through `workbench.cli.main`."""

import json

import numpy as np
import pytest

from workbench.cli import main


def test_inspect_prints_the_table_and_writes_full_statistics(tmp_path, capsys, digits_model):
    out = tmp_path / "stats.json"
    assert main(["inspect", "digits_cnn", "--data", "digits", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    assert lines[0].startswith("digits_cnn (keras")
    conv1 = next(line.split() for line in lines if line.startswith("conv1 "))
    assert conv1[:3] == ["conv1", "Conv2D", "160"]
    assert any(line.startswith("total") and " 38282 " in line for line in lines)
    assert "activation" in printed and str(out) in printed

    record = json.loads(out.read_text())
    assert (record["model"], record["kind"], record["data"]) == ("digits_cnn", "keras", "digits")
    layers = [layer.name for layer in digits_model.keras_model.layers]
    assert [row["name"] for row in record["layers"]] == layers
    weights = {w["layer"]: w for w in record["weights"]}
    assert {name: len(w["per_channel"]) for name, w in weights.items()} == {
        "conv1": 16,
        "conv2": 32,
        "dense": 64,
        "classifier": 10,
    }
    kernel = digits_model.keras_model.get_layer("conv1").kernel.numpy()
    assert weights["conv1"]["per_tensor"]["absmax"] == pytest.approx(np.abs(kernel).max())
    assert len(weights["conv1"]["per_tensor"]["histogram"]["counts"]) == 64
    activations = record["activations"]
    assert [a["layer"] for a in activations] == ["image", *layers]
    assert activations[0]["min"] == 0.0 and activations[0]["max"] == 1.0
    assert activations[0]["count"] == 200 * 8 * 8  # the calibration split, every value
    assert [p.name for p in tmp_path.iterdir()] == ["stats.json"]  # no temporary left behind


def test_inspect_defaults_to_the_default_demo_model(capsys):
    assert main(["inspect"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("shapes_mobilenet (keras")
    assert "folded into" in printed and "activation" not in printed


def test_inspect_reads_a_tflite_file(tmp_path, capsys, digits_model):
    from workbench.engine.routes import float_tflite

    path = tmp_path / "digits.tflite"
    path.write_bytes(float_tflite(digits_model))
    out = tmp_path / "digits.json"
    assert main(["inspect", str(path), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "(tflite" in printed
    rows = [line.split() for line in printed.splitlines()[2:] if line.strip()]
    assert [row[1] for row in rows if row[1].endswith("_2D")] == [
        "CONV_2D",
        "CONV_2D",
        "MAX_POOL_2D",
    ]
    assert [row[-1] for row in rows if row[1] == "CONV_2D"] == ["float32", "float32"]
    record = json.loads(out.read_text())
    assert [w["kind"] for w in record["weights"]] == ["Conv2D", "Conv2D", "Dense", "Dense"]
    assert {w["dtype"] for w in record["weights"]} == {"float32"}
    assert record["activations"] is None
    kernels = [t for t in record["tensors"] if t["constant"] and len(t["shape"]) == 4]
    assert sorted(t["shape"] for t in kernels) == [[16, 3, 3, 1], [32, 3, 3, 16]]
    assert all(t["dtype"] == "float32" and t["scales"] == [] for t in kernels)
    runtime = record["runtime"]
    assert runtime["checked"] and f"runtime: {runtime['summary']}" in printed
    on_xnnpack = {op["opcode"] for op in runtime["ops"] if op["kernel"] == "xnnpack"}
    assert {"CONV_2D", "FULLY_CONNECTED"} <= on_xnnpack


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{d}/missing.keras"], "missing.keras"),
        (["{d}/corrupt.tflite"], "corrupt.tflite"),
        (["digits_cnn", "--data", "no_such_data"], "no_such_data"),
        (["digits_cnn", "--data", "{d}/rgb.npz"], "shape"),
        (["digits_cnn", "--data", "{d}/nan.npz"], "NaN"),
        (["digits_cnn", "--json", "{d}/rgb.npz/x.json"], "rgb.npz is a file"),
    ],
    ids=["missing-model", "corrupt-model", "unknown-data", "wrong-shape", "nan", "json-in-file"],
)
def test_bad_input_is_one_error_line_and_exit_2(tmp_path, capsys, args, message):
    (tmp_path / "corrupt.tflite").write_bytes(b"\x00" * 64)
    x = np.random.default_rng(0).uniform(size=(20, 8, 8, 1)).astype(np.float32)
    np.savez(tmp_path / "rgb.npz", x=np.repeat(x, 3, axis=-1))
    x[4, 1, 1, 0] = np.nan
    np.savez(tmp_path / "nan.npz", x=x)
    before = sorted(p.name for p in tmp_path.iterdir())
    args = [arg.format(d=tmp_path) for arg in args]
    if "--json" not in args:
        args += ["--json", str(tmp_path / "out.json")]
    assert main(["inspect", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing half-written
