"""The recipe's per-video aggregation (docs/recipe.md "Inference") and the DFDC metric.

Expected values are computed by hand from the formula in docs/recipe.md "Inference":
p' = clip(0.5 + sign(d) |d|^0.65, 0.01, 0.99), w = |d| + 1e-4, score = sum(p'w)/sum(w).
"""
import math

import numpy as np
import pytest

from dfdf_train.inference import aggregate, log_loss, mean_aggregate

# |d| ** 0.65 for the d used below, written out once
T01 = 0.1 ** 0.65   # 0.22387...
T03 = 0.3 ** 0.65   # 0.45721...


@pytest.mark.parametrize("probs", [[0.5], [0.5, 0.5], [0.5] * 7, []])
def test_uncertain_or_empty_is_one_half(probs):
    assert aggregate(probs) == 0.5


def test_single_value_is_its_transform():
    assert aggregate([0.6]) == pytest.approx(0.5 + T01)       # 0.7239: pushed out
    assert aggregate([0.2]) == pytest.approx(0.5 - T03)       # 0.0428
    assert aggregate([0.6]) == pytest.approx(0.7238721, abs=1e-7)


@pytest.mark.parametrize("p, expected", [
    ([1.0], 0.99), ([0.0], 0.01),
    ([0.9], 0.99), ([0.1], 0.01),                  # 0.5 + 0.4^0.65 = 1.05 -> 0.99
    ([0.9, 0.95, 1.0], 0.99), ([0.05, 0.1], 0.01),
])
def test_saturates_at_clip_bounds(p, expected):
    assert aggregate(p) == pytest.approx(expected)


def test_mixed_vector_by_hand():
    # d = 0.1, 0, -0.3, 0.4 ; p' = 0.5+T01, 0.5, 0.5-T03, 0.99 (clipped)
    p_t = [0.5 + T01, 0.5, 0.5 - T03, 0.99]
    w = [0.1001, 0.0001, 0.3001, 0.4001]
    expected = sum(a * b for a, b in zip(p_t, w)) / sum(w)
    assert aggregate([0.6, 0.5, 0.2, 0.9]) == pytest.approx(expected, rel=1e-12)
    # a plain mean of the transformed values would differ: the weights matter
    assert abs(expected - np.mean(p_t)) > 0.01


def test_confident_outputs_outvote_uncertain_ones():
    # one confident FAKE output (d = 0.45) among five slightly REAL ones (d = -0.05)
    probs = [0.95] + [0.45] * 5
    w_fake, w_real = 0.4501, 0.0501
    expected = (0.99 * w_fake + 5 * (0.5 - 0.05 ** 0.65) * w_real) / (w_fake + 5 * w_real)
    assert aggregate(probs) == pytest.approx(expected)
    assert aggregate(probs) > 0.75                                   # 0.764
    assert mean_aggregate(probs) == pytest.approx(3.2 / 6)           # 0.533
    assert aggregate([0.45] * 5) < 0.5


def test_all_nearly_uncertain():
    # tiny |d|: weights are dominated by eps, the score is the eps-weighted mean
    probs = [0.5, 0.5, 0.5001]
    p_t = [0.5, 0.5, 0.5 + 0.0001 ** 0.65]
    w = [1e-4, 1e-4, 2e-4]
    assert aggregate(probs) == pytest.approx(sum(a * b for a, b in zip(p_t, w)) / sum(w))


def test_symmetry():
    rng = np.random.default_rng(0)
    for _ in range(50):
        p = rng.uniform(0, 1, size=rng.integers(1, 30))
        assert aggregate(1 - p) == pytest.approx(1 - aggregate(p), abs=1e-12)
    assert aggregate([0.01, 0.99]) == pytest.approx(0.5)


def test_parameters():
    assert aggregate([0.6], power=1.0) == pytest.approx(0.6)
    assert aggregate([1.0], clip=(0.0, 1.0)) == pytest.approx(1.0)
    assert aggregate([0.6, 0.4], power=1.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="clip"):
        aggregate([0.6], clip=(0.9, 0.1))
    with pytest.raises(ValueError, match="power"):
        aggregate([0.6], power=0)
    with pytest.raises(ValueError, match="eps"):
        aggregate([0.6], eps=0)


def test_input_types():
    torch = pytest.importorskip("torch")
    expected = aggregate([0.6, 0.2])
    assert aggregate(np.array([0.6, 0.2], dtype=np.float32)) == pytest.approx(expected, rel=1e-6)
    assert aggregate(np.array([[0.6], [0.2]])) == pytest.approx(expected)  # (N, 1) output
    assert aggregate((0.6, 0.2)) == pytest.approx(expected)
    t = torch.tensor([0.6, 0.2], requires_grad=True)
    assert aggregate(t) == pytest.approx(expected, rel=1e-6)
    assert aggregate(torch.empty(0)) == 0.5
    assert isinstance(aggregate([0.6]), float)


@pytest.mark.parametrize("fn", [aggregate, mean_aggregate])
@pytest.mark.parametrize("bad, message", [
    ([0.3, float("nan")], "NaN"), ([0.3, 1.5], r"\[0, 1\]"), ([-0.1], r"\[0, 1\]"),
    (["a"], "numbers"), ([[0.1], [0.2, 0.3]], "numbers"),
])
def test_bad_input(fn, bad, message):
    with pytest.raises(ValueError, match=message):
        fn(bad)


def test_mean_aggregate():
    assert mean_aggregate([0.2, 0.4]) == pytest.approx(0.3)
    assert mean_aggregate([0.6, 0.5, 0.2, 0.9]) == pytest.approx(0.55)
    assert mean_aggregate([1.0, 1.0]) == pytest.approx(0.99)
    assert mean_aggregate([0.0]) == pytest.approx(0.01)
    assert mean_aggregate([]) == 0.5


def test_log_loss_by_hand():
    # -(ln 0.9 + ln 0.8 + ln 0.5) / 3
    expected = (0.1053605157 + 0.2231435513 + 0.6931471806) / 3
    assert log_loss([1, 0, 1], [0.9, 0.2, 0.5]) == pytest.approx(expected, rel=1e-9)
    assert log_loss([1, 0], [0.5, 0.5]) == pytest.approx(math.log(2))
    assert log_loss([1], [1.0]) == pytest.approx(0.0, abs=1e-12)


def test_log_loss_clips_like_kaggle():
    # a certain mistake costs -ln(1e-15) = 34.5 instead of infinity
    assert log_loss([0], [1.0]) == pytest.approx(34.5388, rel=1e-3)
    assert log_loss([1, 1], [0.0, 1.0]) == pytest.approx(34.5388 / 2, rel=1e-3)
    assert math.isfinite(log_loss([1], [0.0]))


@pytest.mark.parametrize("y, p, message", [
    ([1, 0], [0.5], "length"), ([], [], "no videos"), ([2], [0.5], "0 .REAL. and 1"),
    ([1], [1.2], r"\[0, 1\]"), ([1], [float("nan")], "NaN"),
])
def test_log_loss_bad_input(y, p, message):
    with pytest.raises(ValueError, match=message):
        log_loss(y, p)
