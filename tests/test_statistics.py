"""Intervals: Wilson bounds for a proportion, paired differences on the same samples."""

import numpy as np
import pytest

from workbench.statistics import paired_difference, proportion


def test_wilson_interval_matches_the_textbook_value():
    # 81 of 263: Wilson 95 % interval 0.2553-0.3662 (Newcombe 1998, table I style check)
    estimate = proportion(81, 263)
    assert estimate.value == pytest.approx(30.798, abs=1e-3)
    assert estimate.low == pytest.approx(25.5, abs=0.1)
    assert estimate.high == pytest.approx(36.6, abs=0.1)
    assert estimate.samples == 263


def test_wilson_interval_stays_inside_zero_and_one_hundred():
    assert proportion(0, 10).low == 0.0
    assert proportion(10, 10).high == pytest.approx(100.0)
    assert proportion(10, 10).low < 100.0


def test_paired_difference_is_narrow_when_the_two_agree_on_most_samples():
    rng = np.random.default_rng(0)
    truth = rng.random(1000) < 0.9
    other = truth.copy()
    other[:10] = ~other[:10]  # ten samples differ
    paired = paired_difference(truth, other)
    assert paired.value == pytest.approx(100.0 * (truth.mean() - other.mean()))
    assert paired.high - paired.low < 2.0  # separate intervals would each be ~3.7 points wide
    assert paired.contains(paired.value)


def test_paired_difference_of_identical_predictions_is_exactly_zero():
    same = np.array([True, False, True])
    paired = paired_difference(same, same)
    assert (paired.value, paired.low, paired.high) == (0.0, 0.0, 0.0)


def test_paired_difference_needs_equal_lengths():
    with pytest.raises(ValueError):
        paired_difference(np.ones(3), np.ones(4))
