"""Session: cache hits, calibration reuse, thread safety, observers (real conversions)."""

import json
import math
import threading

import pytest

from workbench.errors import DataError
from workbench.inspection import Inspection
from workbench.qtyping import Granularity, Mode, QuantConfig, Route, VariantResult
from workbench.session import Session
from workbench.statistics import paired_difference, proportion


@pytest.fixture
def session(digits_model, digits):
    """A fresh session per test: cache hits and notifications depend on no other test."""
    return Session(digits_model, digits)


def test_demo_name_brings_its_dataset():
    session = Session("digits_cnn")
    assert session.data is not None and session.data.name == "digits"
    assert session.layer_names == ["conv1", "conv2", "dense", "classifier"]


def test_second_request_is_a_cache_hit(session):
    config = QuantConfig(mode=Mode.DYNAMIC)
    first = session.variant(config)
    before = session.stats.conversions
    second = session.variant(config)
    assert session.stats.conversions == before
    assert second.cached and not first.cached
    assert second.tflite == first.tflite


def test_granularity_switch_reuses_the_calibration(digits_model, digits):
    session = Session(digits_model, digits)
    for granularity in Granularity:
        session.variant(QuantConfig(mode=Mode.INT8, granularity=granularity))
    session.variant(QuantConfig(mode=Mode.INT8, keep_float={"conv1"}))
    assert session.stats.conversions == 3
    assert session.stats.calibrations == 1


def test_concurrent_requests_convert_once(digits_model, digits):
    session = Session(digits_model, digits)
    config = QuantConfig(mode=Mode.FLOAT16)
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(session.variant(config))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert session.stats.conversions == 1
    assert len({variant.tflite for variant in results}) == 1


def test_float32_variant_is_the_float_model(session):
    assert session.variant(QuantConfig(mode=Mode.FLOAT32)).tflite == session.float_bytes


def test_int8_without_data_names_the_fix(digits_model):
    session = Session(digits_model)
    with pytest.raises(DataError, match="data"):
        session.variant(QuantConfig(mode=Mode.INT8))
    with pytest.raises(DataError, match="data="):
        session.evaluate(QuantConfig(route=Route.CONVERTER, mode=Mode.FLOAT32))


def test_evaluate_measures_and_caches(session):
    config = QuantConfig(mode=Mode.INT8)
    assert session.cached_result(config.replace(calibration_samples=7)) is None
    result = session.evaluate(config)
    evaluations = session.stats.evaluations
    assert session.evaluate(config) is result
    assert session.cached_result(config) is result
    assert session.stats.evaluations == evaluations
    assert 0.2 < result.size_ratio < 0.35
    assert result.accuracy is not None and result.accuracy > 0.9
    assert result.accuracy_drop == pytest.approx(100 * (session.float_accuracy() - result.accuracy))
    assert result.agreement > 0.95 and result.snr_db > 20 and result.latency_ms > 0


def test_layer_errors_added_on_request(session):
    config = QuantConfig(mode=Mode.INT8, granularity=Granularity.PER_TENSOR)
    plain = session.evaluate(config)
    detailed = session.evaluate(config, layers=True)
    assert plain.layer_errors is None  # not measured, which is not "no error"
    assert plain.to_dict()["layer_errors"] is None
    assert not plain.to_dict()["layer_errors_measured"]
    assert {e.layer for e in detailed.layer_errors} == set(session.layer_names)
    assert detailed.to_dict()["layer_errors_measured"]
    assert session.cached_result(config) is detailed
    assert session.evaluate(config) is detailed


def test_compare_puts_float32_first_and_notifies(session):
    seen = []
    unsubscribe = session.on_result(seen.append)
    configs = [QuantConfig(mode=Mode.FLOAT16), QuantConfig(mode=Mode.DYNAMIC)]
    results = session.compare(configs)
    unsubscribe()
    assert [r.config.mode for r in results] == [Mode.FLOAT32, Mode.FLOAT16, Mode.DYNAMIC]
    assert results[0].size_ratio == 1.0 and results[0].accuracy_drop == 0.0
    assert sorted(r.config.key for r in seen) == sorted(r.config.key for r in results)
    count = len(seen)
    session.evaluate(QuantConfig(mode=Mode.INT8, io_type="int8"))
    assert len(seen) == count


def test_standard_configs_keep_the_most_sensitive_layer_float(session):
    layer = session.most_sensitive_layer()
    errors = session.evaluate(QuantConfig(mode=Mode.INT8), layers=True).layer_errors
    assert layer == max(errors, key=lambda e: e.rmse_per_scale).layer
    configs = session.standard_configs(Route.CONVERTER)
    assert len(configs) == 7 and len(set(configs)) == 7
    assert configs[-1].keep_float == {layer} and configs[-1].mode is Mode.INT8


@pytest.fixture(scope="module")
def shapes_session(shapes_model, shapes):
    return Session(shapes_model, shapes)


def test_shapes_mobilenet_acceptance(shapes_session):
    """Issue 3's numbers on the default demo: sizes, int8 accuracy, every variant converts."""
    results = {}
    for route in Route:
        configs = [*shapes_session.standard_configs(route)]
        if route is Route.LITERT:
            configs.append(QuantConfig(route=route, mode=Mode.INT4))
        for result in shapes_session.compare(configs):
            results[result.config] = result
    assert len(results) == 7 + 8
    for route in Route:
        float16 = results[QuantConfig(route=route, mode=Mode.FLOAT16)]
        int8 = results[QuantConfig(route=route, mode=Mode.INT8)]
        per_tensor = results[QuantConfig(route=route, mode=Mode.INT8, granularity="per-tensor")]
        assert float16.size_ratio <= 0.55
        assert per_tensor.size_ratio <= 0.30
        assert int8.accuracy_drop < 1.0
    assert results[QuantConfig(route=Route.LITERT, mode=Mode.INT4)].size_ratio < 0.25


def test_shapes_mobilenet_int8_per_channel_size(shapes_session):
    """Issue 3: int8 per-channel at most 0.30 of float32 on both routes, scales included."""
    for route in Route:
        assert shapes_session.evaluate(QuantConfig(route=route, mode=Mode.INT8)).size_ratio <= 0.30


def test_results_carry_their_intervals_and_samples(digits_model, digits):
    session = Session(digits_model, digits)
    result = session.evaluate(QuantConfig(route=Route.LITERT, mode=Mode.INT8))
    samples = len(digits.test.y)
    assert result.samples == samples
    correct = round(result.accuracy * samples)
    assert result.accuracy_estimate == proportion(correct, samples)
    assert result.accuracy_estimate.low < 100 * result.accuracy < result.accuracy_estimate.high
    float_correct = session.float_correct()
    assert float_correct.shape == (samples,) and float_correct.dtype == bool
    assert session.float_correct() is float_correct  # computed once
    drop = result.drop_estimate
    assert drop.samples == samples
    assert drop.value == pytest.approx(result.accuracy_drop)
    assert drop.value == pytest.approx(100 * (session.float_accuracy() - result.accuracy))
    # the paired interval is narrower than the two accuracies' own intervals side by side
    own = proportion(int(float_correct.sum()), samples)
    assert drop.high - drop.low < (own.high - own.low) + (
        result.accuracy_estimate.high - result.accuracy_estimate.low
    )
    assert drop == paired_difference(float_correct, _variant_correct(session, result))


def _variant_correct(session, result):
    from workbench.engine.evaluation import evaluate

    scores = evaluate(session.variant(result.config).tflite, session.data.test, session.reference())
    return scores.correct


def test_unlabelled_data_has_no_intervals(digits_model, digits):
    session = Session(digits_model, digits.test.x[:50])
    result = session.evaluate(QuantConfig(mode=Mode.FLOAT16))
    assert result.accuracy is None and result.accuracy_estimate is None
    assert result.drop_estimate is None and result.samples == len(session.data.test.x)
    assert session.float_correct() is None


def test_records_are_strict_json_and_read_back(digits_model, digits, tmp_path):
    path = tmp_path / "digits_float.tflite"
    path.write_bytes(Session(digits_model, digits).float_bytes)
    session = Session(str(path), digits)  # the reference is this file: float32 equals it
    config = QuantConfig(mode=Mode.FLOAT32)
    record = session.record(config, layers=True)
    assert session.record(config, layers=True) is record  # made once
    assert math.isinf(session.evaluate(config).snr_db)
    text = json.dumps(record, allow_nan=False)
    back = json.loads(text)
    assert back["snr_db"] is None and back["outputs_identical"] is True
    again = VariantResult.from_dict(back)
    assert again.config == config and math.isinf(again.snr_db)
    assert again.layer_errors == () and again.samples == record["samples"]
    assert again.accuracy_estimate == session.evaluate(config).accuracy_estimate
    assert QuantConfig.from_dict(back) == config


def test_summary_is_read_once_per_variant(digits_model, digits):
    session = Session(digits_model, digits)
    config = QuantConfig(mode=Mode.INT8, granularity=Granularity.PER_TENSOR)
    assert session.cached_summary(config) is None
    summary = session.summary(config)
    assert session.summary(config) is summary and session.cached_summary(config) is summary
    assert {row.weight_granularity for row in summary.layers if row.weight_dtype == "int8"} == {
        "per-tensor"
    }
    assert session.summary(QuantConfig(mode=Mode.FLOAT32)).size_bytes == len(session.float_bytes)


def test_float_file_is_made_once_for_every_session_of_a_model(digits_model, digits):
    first, second = Session(digits_model, digits), Session(digits_model, digits)
    assert first.float_bytes is second.float_bytes
    assert first.variant(QuantConfig(mode=Mode.FLOAT32)).tflite is first.float_bytes


def test_inspect_returns_one_frozen_inspection(digits_model, digits):
    session = Session(digits_model, digits)
    report = session.inspect()
    assert isinstance(report, Inspection) and session.inspect() is report
    assert report.activations_measured and report.message == ""
    assert [w.layer for w in report.weights] == session.layer_names
    assert {r.layer for r in report.activations} >= set(session.layer_names)
    assert json.dumps(report.to_dict(), allow_nan=False)
    with pytest.raises(AttributeError):
        report.message = "changed"


def test_inspect_progressively_shows_the_first_samples_first(digits_model, digits):
    """Ranges over the first batch come first and say so; the full ones are inspect()'s."""
    session = Session(digits_model, digits)
    total = len(session.data.calibration)
    assert total > 128
    early, *_, full = list(session.inspect_progressively(first=100))
    assert f"the first 128 of {total} calibration samples" in early.message  # a whole batch
    assert early.activations[0].stats.count < full.activations[0].stats.count
    assert full is session.inspect() and full.message == ""
    assert full.activations == Session(digits_model, digits).inspect().activations
    assert list(session.inspect_progressively()) == [full]


def test_inspect_without_data_says_why(digits_model):
    report = Session(digits_model).inspect()
    assert report.layers and report.weights
    assert not report.activations_measured and report.activations == ()
    assert "no data" in report.message
    assert report.to_dict()["activations"] is None


def test_evaluation_is_capped_and_delivered_progressively(shapes_model, shapes):
    """The test split is capped (raise with test_samples=None); partial results on growing
    prefixes come first, each with its own interval, and end with the cached full result."""
    from workbench import QuantConfig

    assert len(Session(shapes_model, shapes, test_samples=None).data.test) == len(shapes.test)
    session = Session(shapes_model, shapes, test_samples=300)
    assert len(session.data.test) == 300
    config = QuantConfig(mode="float16")
    progress = session.evaluate_progressively(config, first=50, growth=2)
    first_result = next(progress)
    # the first numbers wait neither for a latency measurement nor for the float reference of
    # the whole split; the full result has both
    assert math.isnan(first_result.latency_ms)
    assert session._derived.peek("reference") is None
    results = [first_result, *progress]
    assert [r.samples for r in results] == [50, 100, 200, 300]
    assert math.isfinite(results[-1].latency_ms)
    assert results[-1] is session.evaluate(config)
    widths = [r.accuracy_estimate.high - r.accuracy_estimate.low for r in results]
    assert widths[0] > widths[-1]
    from workbench.engine.evaluation import evaluate

    variant = session.variant(config).tflite
    first = evaluate(variant, session.data.test.head(50), session.reference()[:50])
    assert results[0].accuracy == first.accuracy
    assert list(session.evaluate_progressively(config)) == [results[-1]]


def test_more_test_samples_reuse_conversions_and_measure_afresh(digits_model, digits):
    """`with_test_samples` shares the model's conversions and calibration; every number that
    depends on the test split is measured again on the new samples."""
    session = Session(digits_model, digits, test_samples=100)
    config = QuantConfig(mode=Mode.INT8)
    small = session.evaluate(config)
    conversions = session.stats.conversions
    seen = []
    larger = session.with_test_samples(None)
    larger.on_result(seen.append)
    result = larger.evaluate(config)
    assert (small.samples, result.samples) == (100, len(digits.test))
    assert larger.stats.conversions == conversions and larger.stats.calibrations == 1
    assert larger.reference().shape[0] == len(digits.test) != session.reference().shape[0]
    assert seen == [result] and session.evaluate(config) is small
