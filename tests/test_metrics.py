"""Error metrics on hand-checked numbers."""

import math

import numpy as np
import pytest

from workbench import affine, metrics


def test_mse_max_abs_snr():
    ref = np.array([1.0, -2.0, 3.0, 0.0])
    x = np.array([1.5, -2.0, 2.0, 0.0])
    assert metrics.mse(ref, x) == pytest.approx((0.25 + 1.0) / 4)
    assert metrics.max_abs_error(ref, x) == 1.0
    assert metrics.snr_db(ref, x) == pytest.approx(10 * math.log10(14 / 1.25))
    assert metrics.snr_db(ref, ref) == math.inf
    assert metrics.snr_db(np.zeros(3), np.ones(3)) == -math.inf
    assert isinstance(metrics.mse(ref, x), float)


def test_error_in_scales_of_pure_rounding_is_one_over_sqrt12():
    params = affine.params_from_range(-1.0, 1.0, dtype="int8")
    x = np.random.default_rng(0).uniform(-0.99, 0.99, 200_000).astype(np.float32)
    value = metrics.error_in_scales(x, affine.fake_quantize(x, params), float(params.scale))
    assert value == pytest.approx(1 / math.sqrt(12), rel=0.02)
    with pytest.raises(ValueError):
        metrics.error_in_scales(x, x, 0.0)


def test_cosine_rows_and_top1():
    ref = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]])
    x = np.array([[2.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    assert metrics.cosine_similarity(ref, x) == pytest.approx((1.0 + 0.0 + 1.0) / 3)
    assert metrics.cosine_similarity([1.0, 1.0], [-1.0, -1.0]) == pytest.approx(-1.0)
    assert metrics.top1_agreement(ref[:2], x[:2]) == 0.5


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.mse(np.zeros(3), np.zeros(4))
