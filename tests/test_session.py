"""Session: cache hits, calibration reuse, thread safety, observers (real conversions)."""

import threading

import pytest

from workbench.errors import DataError
from workbench.qtyping import Granularity, Mode, QuantConfig, Route
from workbench.session import Session


@pytest.fixture(scope="module")
def session(digits_model, digits):
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
    assert not plain.layer_errors
    assert {e.layer for e in detailed.layer_errors} == set(session.layer_names)
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
    assert {r.config for r in seen} <= {r.config for r in results}
    assert seen
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
