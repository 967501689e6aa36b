"""`workbench convert`: one variant written atomically; errors leave nothing behind."""

from ai_edge_litert.interpreter import Interpreter

from workbench.cli import main


def dtypes(path) -> set[str]:
    details = Interpreter(model_path=str(path)).get_tensor_details()
    return {detail["dtype"].__name__ for detail in details}


def test_convert_writes_the_variant(tmp_path, capsys):
    out = tmp_path / "sub" / "digits-int8.tflite"
    code = main(
        [
            "convert",
            "digits_cnn",
            "--mode",
            "int8",
            "--io-type",
            "uint8",
            "--samples",
            "50",
            "-o",
            str(out),
        ]
    )
    assert code == 0
    assert {"uint8", "int8"} <= dtypes(out)
    assert "int8 · per-channel · uint8 I/O" in capsys.readouterr().out
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]


def test_convert_error_leaves_nothing(tmp_path, capsys):
    out = tmp_path / "bad.tflite"
    code = main(["convert", "digits_cnn", "--keep-float", "nope", "-o", str(out)])
    assert code == 2
    assert "error: keep_float: no layer named 'nope'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_convert_tflite_input_on_litert_route(tmp_path, capsys):
    float_file = tmp_path / "float.tflite"
    assert main(["convert", "digits_cnn", "--mode", "float32", "-o", str(float_file)]) == 0
    out = tmp_path / "int4.tflite"
    code = main(["convert", str(float_file), "--route", "litert", "--mode", "int4", "-o", str(out)])
    assert code == 0
    assert out.stat().st_size < 0.3 * float_file.stat().st_size
    to_int8 = ["convert", str(float_file), "--mode", "int8", "--data", "digits", "-o"]
    assert main([*to_int8, str(tmp_path / "int8.tflite")]) == 0  # the LiteRT route by default
    assert "int8 · per-channel · litert" in capsys.readouterr().out
    refused = main([*to_int8, str(tmp_path / "x.tflite"), "--route", "converter"])
    assert refused == 2 and not (tmp_path / "x.tflite").exists()
    assert "route litert" in capsys.readouterr().err
