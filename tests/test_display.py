"""Results display themselves: Comparison and Inspection as HTML tables and pandas frames."""

import math

import numpy as np
import pandas as pd
import pytest

from workbench.display import Comparison, html_table
from workbench.qtyping import Granularity, Mode, QuantConfig
from workbench.session import Session


@pytest.fixture(scope="module")
def session(digits_model, digits):
    return Session(digits_model, digits)


def test_compare_returns_a_comparison_that_shows_its_intervals(session):
    results = session.compare([QuantConfig(mode=Mode.INT8, granularity=Granularity.PER_TENSOR)])
    assert isinstance(results, Comparison) and isinstance(results, list)
    html = results._repr_html_()
    assert html.count("<tr>") == 1 + len(results)
    for result in results:
        assert result.label in html
        estimate = result.accuracy_estimate
        assert f"{estimate.value:.2f} [{estimate.low:.2f}, {estimate.high:.2f}]" in html
    assert f"{results[0].samples} test samples" in html


def test_comparison_frame_holds_the_numbers_with_units(session):
    results = session.compare([QuantConfig(mode=Mode.DYNAMIC)])
    frame = results.to_frame()
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.index) == [r.label for r in results]
    for result in results:
        row = frame.loc[result.label]
        assert row["accuracy_pct"] == pytest.approx(100 * result.accuracy)
        assert row["accuracy_low_pct"] == result.accuracy_estimate.low
        assert row["drop_pt"] == result.drop_estimate.value
        assert row["drop_high_pt"] == result.drop_estimate.high
        assert row["size_kb"] == result.size_bytes / 1024
        assert row["samples"] == result.samples
        assert row["mode"] == result.config.mode.value


def test_html_table_escapes_cells():
    html = html_table(["a"], [["<script>"]])
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_inspection_frames_and_html(session):
    report = session.inspect()
    layers = report.to_frame()
    assert list(layers.index) == [row.name for row in report.layers]
    weights = report.to_frame("weights")
    assert list(weights.index) == session.layer_names
    for item in report.weights:
        channels = [c.absmax for c in item.per_channel]
        expected = max(channels) / np.median(channels)
        assert weights.loc[item.layer, "widest_over_median"] == pytest.approx(expected)
        assert weights.loc[item.layer, "max"] == item.per_tensor.max
    ranges = report.to_frame("activations")
    assert len(ranges) == len(report.activations)
    assert all(math.isfinite(v) for v in ranges["max"])
    html = report._repr_html_()
    assert html.count("<table") == 3
    with pytest.raises(ValueError, match="part"):
        report.to_frame("biases")


def test_inspection_without_data_says_so_in_its_display(digits_model):
    report = Session(digits_model).inspect()
    assert report.to_frame("activations").empty
    html = report._repr_html_()
    assert html.count("<table") == 2 and "no data" in html


def test_refused_measurements_are_shown_as_unavailable():
    from workbench.qtyping import Unavailable, VariantResult

    refused = VariantResult(
        config=QuantConfig(mode=Mode.INT16X8),
        size_bytes=2048,
        size_ratio=0.3,
        accuracy=None,
        accuracy_drop=None,
        agreement=None,
        snr_db=math.nan,
        cosine=math.nan,
        latency_ms=math.nan,
        latency_spread_ms=math.nan,
        threads=2,
        convert_s=0.1,
        unavailable=(Unavailable("evaluation", "op refused"), Unavailable("latency", "op refused")),
    )
    table = Comparison([refused])
    html = table._repr_html_()
    assert "unavailable" in html and "evaluation unavailable: op refused" in html
    row = table.to_frame().loc[refused.label]
    assert row["agreement_pct"] is None or math.isnan(row["agreement_pct"])
    assert "latency unavailable: op refused" in row["unavailable"]
