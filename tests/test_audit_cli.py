"""A new user's own models and files through the CLI: inputs of any size, recurrent text models,
integer inputs, several outputs or inputs, Lambda layers, regression targets and contradictory
options. Each either gives a measured result or one line `error: ...` (exit 2), never a
traceback or a crashed process. The tiny models are built here."""

import json
import math
import warnings

import numpy as np
import pytest

from workbench.cli import main


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """Tiny Keras models of the kinds users bring, saved as .keras, and data for each."""
    import keras
    from keras import layers

    folder = tmp_path_factory.mktemp("own-models")
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)

    def save(name, inputs, outputs):
        keras.Model(inputs, outputs, name=name).save(folder / f"{name}.keras")

    def head(x, classes=4):
        x = layers.GlobalAveragePooling2D()(layers.Conv2D(4, 3, activation="relu")(x))
        return layers.Dense(classes, activation="softmax")(x)

    image = keras.Input((None, None, 3))
    save("any_size", image, head(image))
    tokens = keras.Input((6,), dtype="int32")
    recurrent = layers.GRU(4)(layers.Embedding(20, 4)(tokens))
    save("gru", tokens, layers.Dense(3, activation="softmax")(recurrent))
    pixels = keras.Input((8, 8, 3), dtype="uint8")
    save("raw_pixels", pixels, head(layers.Rescaling(1 / 255)(pixels)))
    image = keras.Input((8, 8, 3))
    pooled = layers.GlobalAveragePooling2D()(image)
    save(
        "two_outputs",
        image,
        [layers.Dense(3, activation="softmax")(pooled), layers.Dense(2)(pooled)],
    )
    image = keras.Input((8, 8, 3), batch_size=4)
    save("fixed_batch", image, head(image))
    image = keras.Input((8, 8, 3))
    save("plain", image, head(image))
    save("lambda", image, head(layers.Lambda(lambda t: t * 2.0 - 1.0)(image)))
    plus = layers.Dense(3)(image)  # Keras cannot load it back from HDF5 (`x + 3.0`)
    keras.Model(image, layers.ReLU(6.0)(plus + 3.0)).save(folder / "plus_three.h5")
    pooled = layers.GlobalAveragePooling2D()(layers.Conv2D(4, 3, activation="relu")(image))
    save("binary", image, layers.Dense(1, activation="sigmoid")(pooled))
    save("scalar", image, layers.Dense(1)(pooled))
    second = keras.Input((2,))
    joined = layers.Concatenate()([layers.GlobalAveragePooling2D()(image), second])
    save("two_inputs", [image, second], layers.Dense(3, activation="softmax")(joined))

    np.savez(
        folder / "images.npz", x=rng.random((30, 12, 12, 3), np.float32), y=rng.integers(0, 4, 30)
    )
    np.savez(
        folder / "small.npz", x=rng.random((30, 8, 8, 3), np.float32), y=rng.integers(0, 4, 30)
    )
    np.savez(
        folder / "binary.npz", x=rng.random((80, 8, 8, 3), np.float32), y=rng.integers(0, 2, 80)
    )
    np.savez(folder / "targets.npz", x=rng.random((30, 8, 8, 3), np.float32), y=rng.random(30))
    np.savez(folder / "tokens.npz", x=rng.integers(0, 20, (30, 6)), y=rng.integers(0, 3, 30))
    np.savez(folder / "bytes.npz", x=rng.integers(0, 256, (30, 8, 8, 3), dtype=np.uint8))
    (folder / "corrupt.npz").write_bytes(b"PK\x03\x04 not really")
    from PIL import Image

    for label in ("a", "b"):
        (folder / "gray" / label).mkdir(parents=True)
        for index in range(4):
            pixels = rng.integers(0, 256, (10, 10), dtype=np.uint8)
            Image.fromarray(pixels, "L").save(folder / "gray" / label / f"{index}.png")
    return folder


def _run(capsys, *argv):
    """Exit code, stdout and the last stderr line of `workbench ARGV`."""
    code = main([str(arg) for arg in argv])
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert "Traceback" not in captured.err
    return code, captured.out, lines[-1] if lines else ""


def _compare(capsys, model, data, out, *options):
    """`workbench compare MODEL --data DATA -q --json OUT OPTIONS`: the records by label."""
    code, _, last = _run(capsys, "compare", model, "--data", data, "-q", "--json", out, *options)
    assert code == 0, last
    return {record["label"]: record for record in json.loads(out.read_text())}


def test_inputs_of_any_size_run_at_the_datas_size(own, capsys, tmp_path):
    out = tmp_path / "any.json"
    records = _compare(
        capsys, own / "any_size.keras", own / "images.npz", out, "--modes", "float32,int8"
    )
    for record in records.values():
        assert record["accuracy"] is not None and record["latency_ms"] is not None, record
        assert not record["unavailable"], record["unavailable"]
    tflite, report = tmp_path / "any.tflite", tmp_path / "inspect.json"
    code, _, _ = _run(capsys, "convert", own / "any_size.keras", "--mode", "float32", "-o", tflite)
    assert code == 0
    code, _, _ = _run(
        capsys, "inspect", tflite, "--data", own / "images.npz", "-q", "--json", report
    )
    assert code == 0 and isinstance(json.loads(report.read_text())["activations"], list)


def test_recurrent_text_model_measures_float_and_refuses_integer_calibration(own, capsys, tmp_path):
    options = ["--route", "converter,litert", "--modes", "float32,dynamic,int8"]
    records = _compare(
        capsys, own / "gru.keras", own / "tokens.npz", tmp_path / "gru.json", *options
    )
    # before: every variant failed (TensorListReserve), and int8 crashed TensorFlow
    assert records["float32"]["accuracy"] is not None
    assert records["dynamic · per-channel"]["agreement"] is not None
    refused = records["int8 · per-channel"]["unavailable"]["conversion"]
    assert "WHILE loop" in refused
    assert (
        "LiteRT Quantizer failed"
        in records["int8 · per-channel · litert"]["unavailable"]["conversion"]
    )


def test_integer_input_takes_values_as_stored_and_calibrates(own, capsys, tmp_path):
    out = tmp_path / "raw.json"
    records = _compare(
        capsys, own / "raw_pixels.keras", own / "bytes.npz", out, "--modes", "float32,int8"
    )
    int8 = records["int8 · per-channel"]
    assert not int8["unavailable"], int8["unavailable"]  # calibration fed uint8, not float32
    from workbench.session import Session

    session = Session(str(own / "raw_pixels.keras"), str(own / "bytes.npz"))
    assert session.data.preprocessing.description == "values used as given"
    assert float(np.asarray(session.data.test.x).max()) > 1  # not scaled to 0..1


CASES = {
    "compress-two-outputs": (
        ["compress", "two_outputs.keras", "--technique", "prune", "--data", "small.npz"],
        "compression trains a model with one output",
    ),
    "two-inputs-corrupt-npz": (
        ["compare", "two_inputs.keras", "--data", "corrupt.npz"],
        "not a readable .npz archive",
    ),
    "two-inputs-missing-npz": (
        ["compare", "two_inputs.keras", "--data", "missing.npz"],
        "'missing.npz': no such file",
    ),
    "two-inputs-x-y-npz": (
        ["compare", "two_inputs.keras", "--data", "small.npz"],
        "data 'small': no array for model",
    ),
    "no-data": (["compare", "plain.keras"], "give data (--data on the command line"),
    "granularity-without-modes": (
        ["compare", "plain.keras", "--data", "small.npz", "--granularity", "per-tensor"],
        "--granularity: applies to the modes named with --modes",
    ),
    "keep-float-no-layer": (
        ["compare", "plain.keras", "--data", "small.npz", "--modes", "int8", "--keep-float", "x"],
        "--keep-float: no layer named 'x'",
    ),
    "sweep-memory-limit": (
        ["sweep", "plain.keras", "--data", "small.npz", "--memory-limit", "abc"],
        "--memory-limit: 'abc'; give a size",
    ),
    "sweep-lifetime": (
        ["sweep", "plain.keras", "--data", "small.npz", "--lifetime", "soon"],
        "--lifetime: 'soon'; give a time",
    ),
    "json-and-csv-same-file": (
        ["sweep", "plain.keras", "--json", "rows", "--csv", "./rows"],
        "--json and --csv: both name",
    ),
    "h5-keras-cannot-read-back": (["inspect", "plus_three.h5"], "save it as model.save('m.keras')"),
    "lambda-layer": (["inspect", "lambda.keras"], "keras.models.load_model(path, safe_mode=False)"),
    "regression-targets": (
        ["compare", "plain.keras", "--data", "targets.npz"],
        "save the data without y",
    ),
}


@pytest.mark.parametrize(("argv", "message"), CASES.values(), ids=CASES.keys())
def test_own_files_that_cannot_work_are_one_line(own, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(own)
    quiet = ["-q"] if argv[0] in ("compare", "inspect") else []
    code, _, last = _run(capsys, *argv, *quiet)
    assert code == 2
    assert last.startswith("error: ") and message in last, last


def test_int4_order_without_weight_statistics_warns_nothing():
    from workbench.search.space import LayerInfo, int4_order

    layers = [LayerInfo(f"l{i}", ("CONV_2D",), 64 * (i + 1), True, math.nan) for i in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ordered = int4_order(layers, seed=0)
    assert {layer.name for layer in ordered} == {"l0", "l1", "l2"}


def test_inspect_prepares_image_folders_for_the_model(own, capsys, tmp_path):
    """Gray 10x10 images for an RGB 8x8 model are converted and resized, as compare does."""
    out = tmp_path / "inspect.json"
    code, _, _ = _run(
        capsys, "inspect", own / "plain.keras", "--data", own / "gray", "-q", "--json", out
    )
    assert code == 0
    activations = json.loads(out.read_text())["activations"]
    assert isinstance(activations, list) and activations


def test_inspect_of_a_two_input_model_reports_its_ranges_unavailable(own, capsys, tmp_path):
    rng = np.random.default_rng(1)
    data, out = tmp_path / "two.npz", tmp_path / "two.json"
    from workbench.models import load_model

    names = [tensor.name for tensor in load_model(str(own / "two_inputs.keras")).keras_model.inputs]
    np.savez(data, **{names[0]: rng.random((12, 8, 8, 3)), names[1]: rng.random((12, 2))})
    code, _, _ = _run(
        capsys, "inspect", own / "two_inputs.keras", "--data", data, "-q", "--json", out
    )
    assert code == 0
    assert "one input" in json.loads(out.read_text())["activations"]["unavailable"]


def test_compress_writes_its_default_output_here_named_after_the_model(
    own, capsys, monkeypatch, tmp_path
):
    monkeypatch.chdir(tmp_path)
    argv = [
        "compress",
        own / "plain.keras",
        "--technique",
        "prune",
        "--epochs",
        "1",
        "--steps",
        "1",
    ]
    code, out, _ = _run(capsys, *argv, "--data", own / "small.npz")
    assert code == 0 and out.startswith("plain-prune.keras: ")
    assert (tmp_path / "plain-prune.keras").is_file()
    assert not list(own.glob("*-prune.keras"))  # before: ../plain.keras-prune.keras, beside it


def test_image_folders_without_classes_or_with_classes_one_level_down(tmp_path):
    from PIL import Image

    from workbench.datasets import load_dataset
    from workbench.errors import DataError

    rng = np.random.default_rng(2)
    for folder in (tmp_path / "flat", tmp_path / "nested" / "train" / "cat"):
        folder.mkdir(parents=True)
        for index in range(6):
            pixels = rng.integers(0, 256, (9, 9, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{index}.jpg")
    flat = load_dataset(tmp_path / "flat")  # calibration images: unlabelled data
    assert flat.test.y is None and np.asarray(flat.test.x).shape[1:] == (9, 9, 3)
    with pytest.raises(DataError, match="one level deeper: give .*nested/train$"):
        load_dataset(tmp_path / "nested")


def test_python_api_wrong_arguments_are_one_line(own):
    from workbench import QuantConfig
    from workbench.errors import WorkbenchError
    from workbench.session import Session

    data = str(own / "small.npz")
    session = Session(str(own / "plain.keras"), data)
    for wrong in ({"mode": "int8"}, "int8", None):
        with pytest.raises(WorkbenchError, match="give a QuantConfig"):
            session.variant(wrong)
    with pytest.raises(WorkbenchError, match="^config: a str; give a QuantConfig"):
        session.compare(["int8"])
    assert len(session.compare(QuantConfig())) == 2  # one config, not a list, and float32
    for count in (0, -1, 2.5):
        with pytest.raises(WorkbenchError, match="^test_samples: .*give a positive number"):
            Session(str(own / "plain.keras"), data, test_samples=count)


def test_a_binary_classifier_has_accuracy_from_a_sigmoid_or_a_logit(own, tmp_path):
    """One sigmoid output is class 1's probability (above 0.5: class 1); one linear output
    against class labels is its logit (above 0: class 1; TensorFlow's transfer-learning
    tutorial trains `Dense(1)` "from logits"); without labels, a value (SNR and cosine)."""
    from workbench import Mode, QuantConfig
    from workbench.errors import DataError
    from workbench.session import Session

    for name, threshold in (("binary", 0.5), ("scalar", 0.0)):
        binary = Session(str(own / f"{name}.keras"), str(own / "binary.npz"))
        labels = binary.data.test.y
        for config in (QuantConfig(mode=Mode.FLOAT32), QuantConfig()):
            result = binary.evaluate(config)
            outputs = binary.outputs(config, "test")[:, 0]
            assert result.accuracy == pytest.approx(np.mean((outputs > threshold) == labels))
            reference = binary.reference()[:, 0] > threshold
            assert result.agreement == pytest.approx(np.mean((outputs > threshold) == reference))
            assert result.accuracy_drop is not None
    np.savez(tmp_path / "unlabelled.npz", x=np.load(own / "binary.npz")["x"])
    scalar = Session(str(own / "scalar.keras"), str(tmp_path / "unlabelled.npz"))
    value = scalar.evaluate(QuantConfig())
    assert value.accuracy is None and value.agreement is None and value.snr_db is not None
    refused = r"^data 'small': label [23] is outside the model's 2 classes"
    with pytest.raises(DataError, match=refused):  # labels 0..3 for a sigmoid
        Session(str(own / "binary.keras"), str(own / "small.npz"))


def test_litert_progress_bars_stay_off_for_models_of_many_tensors(capsys):
    from litert_quantizer.utils import progress_utils

    from workbench.engine.routes.litert import _no_progress_bars

    with _no_progress_bars():  # the quantizer passes enable=None: shown from 100 tensors on
        with progress_utils.ProgressBar(
            total_steps=300, description="Applying", enable=None
        ) as bar:
            for _ in range(300):
                bar.update_single_step()
    assert "Applying" not in capsys.readouterr().err


def test_a_model_of_fixed_batch_is_measured_in_batches_of_its_size(own, capsys, tmp_path):
    out = tmp_path / "fixed.json"  # 6 test samples: a batch of 4 and one padded to 4
    records = _compare(
        capsys, own / "fixed_batch.keras", own / "small.npz", out, "--modes", "float32,int8"
    )
    assert records["float32"]["samples"] == 6 and records["float32"]["agreement"] == 1.0
    assert records["int8 · per-channel"]["accuracy"] is not None
