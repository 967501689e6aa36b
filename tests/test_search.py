"""The accuracy-budget search end to end: real variants on the LiteRT interpreter, the Pareto
front, best-so-far on cancel and budget, the variant cache, the recipe, one-line errors."""

import csv
import io
import json
import threading

import numpy as np
import pytest
from servers import leaves_no_process

from workbench.cli import main
from workbench.errors import DataError, UnsupportedError
from workbench.qtyping import LayerPrecision, Mode, QuantConfig, Route
from workbench.search import Objective, SearchConfig
from workbench.search.result import pareto_front
from workbench.session import Session
from workbench.tflite_file import read_tflite


@pytest.fixture(scope="module")
def digits_search(digits_session):
    return digits_session.search(SearchConfig(max_drop=2.0, budget=12))


def _best(trials, objective=Objective.SIZE):
    good = [t for t in trials if t.validated and t.within]
    return min(good, key=lambda t: (t.objective(objective), -t.accuracy.value))


def test_search_config_is_a_validated_value():
    config = SearchConfig(objective="latency", max_drop=0.5, budget=None, seconds=30, seed=3)
    assert SearchConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert config.objective is Objective.LATENCY and hash(config) == hash(config.replace())
    for bad, argument in (
        ({"max_drop": -0.1}, "max_drop"),
        ({"budget": 0}, "budget"),
        ({"budget": None, "seconds": None}, "budget"),
        ({"seconds": 0}, "seconds"),
        ({"objective": "accuracy"}, "objective"),
        ({"max_drop": "a lot"}, "max_drop"),
    ):
        with pytest.raises(UnsupportedError) as raised:
            SearchConfig(**bad)
        message = str(raised.value)
        assert message.startswith(f"{argument}:") and "\n" not in message


def test_cli_rejects_bad_values_in_one_line(tmp_path, capsys):
    out = tmp_path / "never.json"
    for argv, option in (
        (["--max-drop", "-1"], "--max-drop"),
        (["--budget", "0"], "--budget"),
        (["--objective", "speed"], "--objective"),
    ):
        assert main(["search", "digits_cnn", *argv, "--json", str(out)]) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith(f"error: {option}:") and "\n" not in error
    assert not out.exists()


def test_per_layer_precision_is_part_of_the_config():
    config = QuantConfig(route="litert", layer_precision={"b": "int4", "a": "float32", "c": "int8"})
    assert config.keep_float == {"a"} and config.layer_precision == (("b", LayerPrecision.INT4),)
    assert config.layers == {"a": LayerPrecision.FLOAT32, "b": LayerPrecision.INT4}
    assert QuantConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert "layer_precision" not in QuantConfig(route="litert").to_dict()  # old keys unchanged
    assert config == QuantConfig(route="litert", keep_float={"a"}, layer_precision={"b": "int4"})
    with pytest.raises(UnsupportedError, match="^layer_precision: per-layer precision needs"):
        QuantConfig(route="converter", layer_precision={"b": "int4"})
    with pytest.raises(UnsupportedError, match=r"^layer_precision\['b'\]: 'int3' is not one of"):
        QuantConfig(route="litert", layer_precision={"b": "int3"})


def test_search_finds_a_smaller_variant_within_the_drop(digits_session, digits_search):
    result = digits_search
    chosen = result.chosen_trial
    int8 = next(t for t in result.trials if t.step == "baseline")
    assert result.status == "finished" and chosen.within and chosen.drop.high <= 2.0
    assert chosen.size_bytes <= int8.size_bytes and result.validations <= 12
    assert chosen is _best(result.trials)
    assert result.tflite == digits_session.variant(chosen.config).tflite
    assert read_tflite(result.tflite).ops
    test = result.test  # reported on the test split, paired against float on the same samples
    assert test.accuracy.samples == len(digits_session.data.test) == test.drop.samples
    labels = digits_session.data.test.y
    quantized = np.argmax(digits_session.outputs(chosen.config, "test"), axis=-1) == labels
    assert test.accuracy.value == pytest.approx(100 * quantized.mean())
    assert test.drop.low <= test.drop.value <= test.drop.high
    for trial in result.validated:  # every trial a real file measured on the validation split
        assert trial.accuracy.samples == len(digits_session.data.validation)
        assert trial.size_bytes == len(digits_session.variant(trial.config).tflite)
        assert trial.latency_ms > 0


def test_front_has_every_validated_trial(digits_search):
    result = digits_search
    rows = list(csv.DictReader(io.StringIO(result.front_csv())))
    assert [int(row["index"]) for row in rows] == [t.index for t in result.validated]
    assert [row["index"] for row in rows if row["chosen"] == "True"] == [str(result.chosen)]
    front = result.front
    pareto = {int(row["index"]) for row in rows if row["pareto"] == "True"}
    assert pareto == {t.index for t in front} and front
    for trial in result.validated:  # nothing on the front is beaten on both axes
        for point in front:
            assert not (
                trial.size_bytes < point.size_bytes and trial.accuracy.value > point.accuracy.value
            )
    assert pareto_front(front, Objective.SIZE) == front


def test_repeated_search_hits_the_variant_cache(digits_session, digits_search):
    conversions = digits_session.stats.conversions
    again = digits_session.search(SearchConfig(max_drop=2.0, budget=12))
    assert again.validations == 0 and all(t.cached for t in again.validated)
    assert digits_session.stats.conversions == conversions
    assert again.chosen_trial.config == digits_search.chosen_trial.config


def test_cancel_after_k_trials_returns_the_best_of_k(digits_session):
    cancel, seen = threading.Event(), []

    def progress(trial, best):
        seen.append((trial, best))
        if len(seen) == 3:
            cancel.set()

    config = SearchConfig(max_drop=2.0, budget=12, seed=1)
    result = digits_session.search(config, progress=progress, cancel=cancel)
    assert result.status == "cancelled" and len(result.trials) == 3
    assert result.chosen_trial is _best(result.trials)
    assert seen[-1][1] is result.chosen_trial  # the best so far after every trial
    # new calibration, new variants: one full validation (float32 comes from the cache)
    budget = digits_session.search(config.replace(budget=1, calibration_samples=50))
    assert budget.status == "budget" and budget.validations == 1
    assert [t.cached for t in budget.trials] == [True, False]
    assert budget.chosen_trial is _best(budget.trials)


def test_recipe_reproduces_the_chosen_file(digits_session, digits_search, tmp_path):
    """The saved recipe, applied by the LiteRT Quantizer alone, gives the same tensors."""
    from litert_quantizer import Quantizer

    written = digits_search.save(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {
        "search.json", "front.json", "front.csv", "chosen.tflite", "chosen.recipe.json"
    }  # fmt: skip
    assert written["tflite"].read_bytes() == digits_search.tflite
    recipe = json.loads(written["recipe"].read_text())
    assert len(json.loads(written["front_json"].read_text())) == len(digits_search.validated)
    chosen = digits_search.chosen_trial.config
    assert chosen.mode is Mode.INT8 and chosen.route is Route.LITERT
    quantizer = Quantizer(digits_session.float_bytes, recipe)
    samples = digits_session.data.calibration.x[: chosen.calibration_samples]
    signature, spec = next(iter(_signatures(digits_session.float_bytes).items()))
    feeds = [{spec["inputs"][0]: samples[i : i + 1]} for i in range(len(samples))]
    calibration = quantizer.calibrate({signature: feeds})
    rebuilt = bytes(quantizer.quantize(calibration).quantized_model)
    _assert_same_tensors(rebuilt, digits_search.tflite)


def _signatures(tflite):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=tflite).get_signature_list()


def _assert_same_tensors(first, second):
    from ai_edge_litert.interpreter import Interpreter

    a, b = read_tflite(first), read_tflite(second)
    assert [t.name for t in a.tensors] == [t.name for t in b.tensors]
    assert [(t.dtype, t.shape, t.scales, t.zero_points) for t in a.tensors] == [
        (t.dtype, t.shape, t.scales, t.zero_points) for t in b.tensors
    ]
    left = Interpreter(model_content=first, experimental_preserve_all_tensors=True)
    right = Interpreter(model_content=second, experimental_preserve_all_tensors=True)
    left.allocate_tensors(), right.allocate_tensors()
    constants = [t.index for t in a.tensors if t.constant and t.dtype != "int4"]
    for index in constants:
        assert np.array_equal(left.get_tensor(index), right.get_tensor(index))


def test_latency_objective_measures_every_trial(digits_session):
    result = digits_session.search(SearchConfig(objective="latency", max_drop=1.0, budget=6))
    chosen = result.chosen_trial
    assert all(t.latency_ms > 0 for t in result.validated)
    assert chosen is _best(result.trials, Objective.LATENCY)
    assert [t.index for t in result.front] == sorted(
        (t.index for t in result.front), key=lambda i: result.trials[i].latency_ms
    )


def test_cli_search_prints_each_trial_and_writes_files(tmp_path, capsys):
    out, saved = tmp_path / "search.json", tmp_path / "chosen"
    argv = ["search", "digits_cnn", "--budget", "4", "--json", str(out), "--save-dir", str(saved)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    record = json.loads(out.read_text())
    assert printed.count("\ntrial ") == len(record["trials"]) and "Pareto front" in printed
    assert record["search"]["budget"] == 4 and record["validations"] <= 4
    assert (saved / "chosen.tflite").stat().st_size == record["trials"][record["chosen"]][
        "size_bytes"
    ]
    assert not list(saved.glob(".*"))  # no temporary file left


def test_trials_on_a_dask_cluster_choose_the_same_variant(tmp_path, capsys):
    """`--workers 1`: a spawned worker process converts and validates every candidate (here
    also the int8 per-layer error the repair step ranks by); the same trials, choice, test
    report, recipe and file as the local search; nothing left running afterwards."""
    out, saved = tmp_path / "search.json", tmp_path / "chosen"
    argv = ["search", "digits_cnn", "--max-drop", "0", "--budget", "6", "--workers", "1",
            "--json", str(out), "--save-dir", str(saved)]  # fmt: skip
    with leaves_no_process():
        assert main(argv) == 0
    assert "Dask dashboard: http://127.0.0.1:" in capsys.readouterr().out
    # a fresh session: cached validations do not count against the budget, which binds here
    search = Session("digits_cnn").search(SearchConfig(max_drop=0.0, budget=6))
    remote, local = json.loads(out.read_text()), search.to_dict()
    same = ("key", "step", "size_bytes", "accuracy", "drop", "within", "error")
    assert [{k: t[k] for k in same} for t in remote["trials"]] == [
        {k: t[k] for k in same} for t in local["trials"]
    ]
    assert any(t["step"] == "repair" for t in remote["trials"])
    for field in ("chosen", "front", "test", "recipe", "float_accuracy", "status"):
        assert remote[field] == local[field], field
    assert (saved / "chosen.tflite").read_bytes() == search.tflite


def test_search_on_mobilenet_v2_with_generated_data():
    """A real architecture (random init, generated data) end to end; int4 refused on depthwise."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(
        alpha=0.35, input_shape=(96, 96, 3), weights=None, classes=10
    )
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (60, 96, 96, 3), dtype=np.uint8)
    session = Session(model, (x, np.arange(60) % 10))
    result = session.search(SearchConfig(max_drop=5.0, budget=4))
    assert result.status in ("budget", "finished") and result.validations <= 4
    assert result.chosen_trial.within and result.test.accuracy.samples == 12
    for trial in result.trials:  # what the runtime refuses is a failed trial, not a crash
        assert trial.validated or trial.error
    depthwise = next(layer for layer in session.layer_names if "depthwise" in layer)
    with pytest.raises(UnsupportedError, match=f"^layer_precision: layer '{depthwise}' is a"):
        session.variant(QuantConfig(route="litert", layer_precision={depthwise: "int4"}))


def test_search_needs_labelled_data(digits_model):
    with pytest.raises(DataError, match="^data: searching needs labelled data; give data"):
        Session(digits_model).search()
    with pytest.raises(UnsupportedError, match="^config: a dict; give a SearchConfig"):
        Session(digits_model).search({"max_drop": 1.0})
