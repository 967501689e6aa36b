"""QuantConfig and VariantResult: one-line errors naming the field, records that read back."""

import json
import math

import pytest

from workbench.errors import UnsupportedError
from workbench.qtyping import LayerError, Mode, QuantConfig, Route, VariantResult
from workbench.statistics import proportion


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"calibration_samples": "x"}, "calibration_samples"),
        ({"calibration_samples": 2.5}, "calibration_samples"),
        ({"calibration_samples": None}, "calibration_samples"),
        ({"calibration_samples": True}, "calibration_samples"),
        ({"calibration_samples": 0}, "calibration_samples"),
        ({"keep_float": [1]}, "keep_float"),
        ({"keep_float": ["conv1", None]}, "keep_float"),
        ({"keep_float": 5}, "keep_float"),
        ({"keep_float": "conv1"}, "keep_float"),
        ({"mode": ["int8"]}, "mode"),
        ({"route": "tflite"}, "route"),
        ({"mode": Mode.FLOAT16, "keep_float": {"conv1"}}, "keep_float"),
        ({"mode": Mode.FLOAT32, "keep_float": {"conv1"}}, "keep_float"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_field(fields, field):
    with pytest.raises(UnsupportedError) as caught:
        QuantConfig(**fields)
    message = str(caught.value)
    assert message.startswith(f"{field}:") and "\n" not in message


def test_fields_a_mode_does_not_use_are_normalised():
    assert QuantConfig(mode=Mode.FLOAT16, granularity="per-tensor") == QuantConfig(
        mode=Mode.FLOAT16
    )
    assert QuantConfig(mode=Mode.DYNAMIC, calibration_samples=7).calibration_samples == 0
    assert QuantConfig(mode=Mode.DYNAMIC, keep_float=["conv1"]).keep_float == {"conv1"}


def _result(config: QuantConfig, snr_db: float, layer_errors=None) -> VariantResult:
    return VariantResult(
        config=config,
        size_bytes=1000,
        size_ratio=0.5,
        accuracy=0.9,
        accuracy_drop=1.0,
        agreement=0.95,
        snr_db=snr_db,
        cosine=0.99,
        latency_ms=0.1,
        latency_spread_ms=0.01,
        threads=2,
        convert_s=0.5,
        layer_errors=layer_errors,
        accuracy_estimate=proportion(90, 100),
        samples=100,
    )


def _strict(text: str):
    def refuse(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("snr_db", [math.inf, -math.inf, 31.5])
def test_records_are_strict_json_and_round_trip(snr_db):
    errors = (LayerError("conv1", "t", 0.1, 0.05, 2.0),)
    result = _result(QuantConfig(route=Route.LITERT, keep_float={"dense"}), snr_db, errors)
    record = _strict(json.dumps(result.to_dict(), allow_nan=False))
    back = VariantResult.from_dict(record)
    assert back.config == result.config and back.layer_errors == errors
    assert back.accuracy_estimate == result.accuracy_estimate and back.samples == 100
    if snr_db == math.inf:
        assert record["snr_db"] is None and record["outputs_identical"]
        assert back.snr_db == math.inf
    elif math.isfinite(snr_db):
        assert back == result
    else:
        assert record["snr_db"] is None and not record["outputs_identical"]


def test_not_measured_layer_errors_stay_not_measured():
    record = _result(QuantConfig(), 20.0).to_dict()
    assert record["layer_errors"] is None and record["layer_errors_measured"] is False
    assert VariantResult.from_dict(record).layer_errors is None
    measured = _result(QuantConfig(), 20.0, ()).to_dict()
    assert measured["layer_errors"] == [] and measured["layer_errors_measured"] is True


def test_from_dict_reads_a_result_record_and_refuses_unknown_keys():
    record = _result(QuantConfig(mode=Mode.INT16X8), 20.0).to_dict()
    assert QuantConfig.from_dict(record) == QuantConfig(mode=Mode.INT16X8)
    with pytest.raises(UnsupportedError, match=r"unknown key 'colour'") as caught:
        QuantConfig.from_dict({**record, "colour": "red"})
    assert "\n" not in str(caught.value)
    with pytest.raises(UnsupportedError, match="version 2"):
        QuantConfig.from_dict({"version": 2, "mode": "int8"})
    with pytest.raises(UnsupportedError, match="not a mapping"):
        QuantConfig.from_dict(["int8"])
    with pytest.raises(UnsupportedError, match="result record"):
        VariantResult.from_dict(QuantConfig().to_dict())


def test_the_dashboards_json_download_is_strict_json():
    from workbench.widgets.html import comparison_json

    rows = [_result(QuantConfig(mode=Mode.FLOAT32), math.inf), _result(QuantConfig(), 40.0)]
    records = _strict(comparison_json(rows))
    assert [r["snr_db"] for r in records] == [None, 40.0]
    assert [r["outputs_identical"] for r in records] == [True, False]
