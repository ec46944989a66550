"""Gerchberg–Saxton through a known TM: the full-TM baseline, and why the DOF ratio matters."""

import numpy as np
import pytest

from labpnn.control.metrics import pearson_fidelity
from labpnn.control.phase_retrieval import (
    ProjectionOptics,
    gerchberg_saxton,
    project_targets,
    refine_phases,
)


def random_tm(n_pixels, n_macropixels, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n_pixels, n_macropixels)) + 1j * rng.standard_normal(
        (n_pixels, n_macropixels)
    )
    return z / np.sqrt(2 * n_macropixels)


def fidelity(optics, phases, targets):
    return float(np.mean(pearson_fidelity(optics.intensity(phases), targets, flat=True)))


def test_gs_reaches_high_fidelity_at_four_slm_pixels_per_target_pixel(small_digits):
    _, targets = small_digits  # 8×8 = 64 target pixels
    optics = ProjectionOptics(random_tm(64, 256))
    assert fidelity(optics, gerchberg_saxton(optics, targets, 50), targets) >= 0.95


def test_gs_is_worse_at_ratio_one_and_fails_outright_without_the_ridge(small_digits):
    _, targets = small_digits
    ratio4 = ProjectionOptics(random_tm(64, 256))
    ratio1 = ProjectionOptics(random_tm(64, 64))
    f4 = fidelity(ratio4, gerchberg_saxton(ratio4, targets, 50), targets)
    f1 = fidelity(ratio1, gerchberg_saxton(ratio1, targets, 50), targets)
    assert f1 < f4 - 0.03
    # A plain pseudo-inverse of a square random TM is ill-conditioned: GS goes nowhere.
    plain = fidelity(ratio1, gerchberg_saxton(ratio1, targets, 50, regularization=1e-9), targets)
    assert plain < 0.5


def test_refinement_reaches_the_target_when_the_tm_is_exact(small_digits):
    _, targets = small_digits
    optics = ProjectionOptics(random_tm(64, 256, seed=3))
    phases = project_targets(optics, targets[:10], iterations=20, refine_steps=150)
    assert fidelity(optics, phases, targets[:10]) >= 0.99


def test_a_static_reference_and_camera_binning_are_part_of_the_model(small_digits):
    _, targets = small_digits
    rng = np.random.default_rng(5)
    tm = random_tm(256, 256, seed=5)  # 16×16 camera pixels, binned 2×2 into 8×8
    reference = 0.2 * (rng.standard_normal(256) + 1j * rng.standard_normal(256))
    pool = np.zeros((64, 256))
    for y in range(16):
        for x in range(16):
            pool[(y // 2) * 8 + x // 2, y * 16 + x] = 0.25
    optics = ProjectionOptics(tm, reference=reference, pooling=pool)
    phases = gerchberg_saxton(optics, targets[:10], 50, regularization=0.3)
    assert fidelity(optics, phases, targets[:10]) >= 0.85
    refined = refine_phases(optics, targets[:10], phases, steps=50)
    assert fidelity(optics, refined, targets[:10]) > fidelity(optics, phases, targets[:10])


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="one value per camera pixel"):
        ProjectionOptics(random_tm(16, 64), reference=np.ones(5))
