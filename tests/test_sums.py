"""Scores from sums: any partition of the samples gives the identical result, equal to
`evaluation.evaluate` up to float64 rounding."""

import numpy as np
import pytest

from workbench.engine.evaluation import Latency, evaluate
from workbench.engine.sums import pooled_latency, score_sums
from workbench.errors import DataError


def _scores(samples: int = 1000, classes: int = 10):
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(samples, classes)).astype(np.float32)
    outputs = reference + rng.normal(scale=0.3, size=reference.shape).astype(np.float32)
    labels = rng.integers(0, classes, samples)
    return outputs, reference, labels


@pytest.mark.parametrize("cuts", [[500], [1, 999], [256, 512, 768], list(range(100, 1000, 100))])
def test_shard_sums_combine_to_the_whole_exactly(cuts):
    outputs, reference, labels = _scores()
    whole = score_sums(outputs, reference, labels)
    parts = [
        score_sums(o, r, y)
        for o, r, y in zip(*(np.split(a, cuts) for a in (outputs, reference, labels)), strict=True)
    ]
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    assert total == whole
    assert total.evaluation() == whole.evaluation()


def test_estimates_equal_the_paired_statistics_of_the_samples():
    from workbench.metrics import top1_correct
    from workbench.statistics import paired_difference, proportion

    outputs, reference, labels = _scores()
    accuracy, drop = score_sums(outputs, reference, labels).estimates()
    right, float_right = top1_correct(outputs, labels), top1_correct(reference, labels)
    assert accuracy == proportion(int(right.sum()), len(right))
    expected = paired_difference(float_right, right)
    assert (drop.value, drop.samples) == (expected.value, expected.samples)
    assert drop.low == pytest.approx(expected.low, abs=1e-9)


def test_sums_agree_with_evaluate_on_a_real_model(digits, digits_model):
    from workbench.engine.evaluation import run_tflite
    from workbench.engine.routes import float_tflite

    data = float_tflite(digits_model)
    reference = digits_model.keras_model.predict(digits.test.x, verbose=0)
    single = evaluate(data, digits.test, reference)
    summed = score_sums(run_tflite(data, digits.test.x), reference, digits.test.y).evaluation()
    assert (summed.accuracy, summed.agreement, summed.samples) == (
        single.accuracy,
        single.agreement,
        single.samples,
    )
    assert summed.snr_db == pytest.approx(single.snr_db, rel=1e-12)
    assert summed.cosine == pytest.approx(single.cosine, rel=1e-12)


def test_unlabelled_and_identical_outputs():
    outputs, reference, _ = _scores(50)
    same = score_sums(reference, reference, None)
    assert same.correct is None and same.estimates() == (None, None)
    assert same.evaluation().snr_db == float("inf") and same.evaluation().agreement == 1.0
    assert score_sums(outputs, reference, None).evaluation().accuracy is None


def test_outputs_that_are_not_class_scores_have_no_accuracy_or_agreement():
    outputs, reference, labels = _scores(50, classes=1)  # e.g. a regression value
    values = score_sums(outputs, reference, labels, classes=None)
    assert values.estimates() == (None, None)
    assert (values.evaluation().accuracy, values.evaluation().agreement) == (None, None)
    with pytest.raises(ValueError, match="cannot add"):
        values + score_sums(outputs, reference, labels)


def test_labels_a_single_score_cannot_predict_are_refused():
    outputs, reference, _ = _scores(50, classes=1)  # a binary classifier's one score
    with pytest.raises(DataError, match="^labels: found 3, but the model gives one score"):
        score_sums(outputs, reference, np.arange(50) % 4)


def test_pooled_latency_is_the_distribution_of_all_times():
    times = [np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0])]
    assert pooled_latency(times, 2) == Latency(3.0, 2.0, 2)


def test_a_logit_reads_class_one_above_zero_as_the_session_does():
    from workbench.engine.evaluation import Classes

    outputs, reference, _ = _scores(400, classes=1)  # centred on 0: a probability's 0.5 is off
    labels = (reference[:, 0] > 0).astype(np.int64)
    logit = score_sums(outputs, reference, labels, Classes.LOGIT).evaluation()
    assert logit.accuracy == np.mean((outputs[:, 0] > 0) == labels)
    assert logit.agreement == logit.accuracy  # the labels are the float model's own classes
    probability = score_sums(outputs, reference, labels, Classes.PROBABILITY).evaluation()
    assert probability.accuracy == np.mean((outputs[:, 0] > 0.5) == labels) < logit.accuracy
