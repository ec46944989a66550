"""Fidelity, MSE and PSNR: the numbers every control run reports."""

import numpy as np
import pytest

from labpnn.control.metrics import (
    TargetError,
    chance_fidelity,
    check_targets,
    mse,
    pearson_fidelity,
    psnr,
)


def test_fidelity_ignores_camera_gain_and_offset():
    rng = np.random.default_rng(0)
    target = rng.random((8, 8))
    assert pearson_fidelity(3.0 * target + 7.0, target) == pytest.approx(1.0)
    assert pearson_fidelity(-target, target) == pytest.approx(-1.0)


def test_fidelity_of_a_batch_is_per_image():
    rng = np.random.default_rng(1)
    targets = rng.random((5, 4, 4))
    projected = targets.copy()
    projected[2] = rng.random((4, 4))
    r = pearson_fidelity(projected, targets)
    assert r.shape == (5,)
    assert np.allclose(np.delete(r, 2), 1.0) and r[2] < 0.9
    flat = pearson_fidelity(projected.reshape(5, -1), targets.reshape(5, -1), flat=True)
    assert np.allclose(flat, r)


@pytest.mark.parametrize("value", [0.0, 0.7])
def test_a_constant_target_is_refused_because_pearson_is_undefined(value):
    with pytest.raises(TargetError, match="undefined"):
        pearson_fidelity(np.random.random((4, 4)), np.full((4, 4), value))


def test_empty_negative_and_nan_targets_are_refused():
    with pytest.raises(TargetError, match="empty"):
        check_targets(np.zeros((0, 4, 4)))
    with pytest.raises(TargetError, match="negative"):
        check_targets(-np.random.random((1, 4, 4)))
    bad = np.random.random((1, 4, 4))
    bad[0, 0, 0] = np.nan
    with pytest.raises(TargetError, match="NaN"):
        check_targets(bad)


def test_a_dark_frame_scores_zero_not_nan():
    assert pearson_fidelity(np.zeros((4, 4)), np.random.random((4, 4))) == 0.0


def test_mse_and_psnr_judge_shape_not_exposure():
    rng = np.random.default_rng(2)
    target = rng.random((6, 6))
    assert mse(5.0 * target, target) == pytest.approx(0.0, abs=1e-20)
    assert psnr(5.0 * target, target) > 100
    noisy = target + 0.05 * rng.standard_normal(target.shape)
    assert 15 < psnr(noisy, target) < 40


def test_shape_mismatch_is_explained():
    with pytest.raises(TargetError, match="cannot be compared"):
        pearson_fidelity(np.ones((4, 4)), np.random.random((5, 5)))


def test_the_chance_level_of_developed_speckle_is_zero_within_one_over_root_p():
    rng = np.random.default_rng(4)
    targets = rng.random((10, 256))
    speckle = rng.exponential(1.0, (20, 256))  # intensity of fully developed speckle
    chance = chance_fidelity(speckle, targets)
    assert chance.shape == (200,)
    assert abs(chance.mean()) < 0.03 and 0.03 < chance.std() < 0.1  # 1/√256 = 0.0625
    # each image is scored against every target: the images themselves score 1 on theirs
    assert chance_fidelity(targets[:2], targets).reshape(2, 10)[[0, 1], [0, 1]] == pytest.approx(1)
