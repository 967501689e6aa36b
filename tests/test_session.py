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
