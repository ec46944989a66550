"""Phase-stepping maths on a synthetic medium, independent of any bench."""

import numpy as np
import pytest

from labpnn.calibration.tm import (
    basis_phases,
    column_pearson,
    focus_phases,
    hadamard,
    reconstruct,
    theory_enhancement,
)


def synthetic(n=64, pixels=100, seed=0):
    rng = np.random.default_rng(seed)
    t = (rng.normal(size=(pixels, n)) + 1j * rng.normal(size=(pixels, n))) / np.sqrt(2 * n)
    s = (rng.normal(size=pixels) + 1j * rng.normal(size=pixels)) * 0.7
    return t, s


def test_hadamard_is_orthogonal_and_refuses_other_sizes():
    h = hadamard(16).astype(int)
    np.testing.assert_array_equal(h @ h.T, 16 * np.eye(16))
    with pytest.raises(ValueError, match="power-of-two"):
        hadamard(12)


def test_noise_free_phase_stepping_recovers_the_observed_tm_exactly():
    n = 64
    t, s = synthetic(n)
    fields = s[None, :] + np.exp(1j * basis_phases(n)) @ t.T
    measured = reconstruct(np.abs(fields) ** 2, n)
    np.testing.assert_allclose(measured, np.conj(s)[:, None] * t, atol=1e-10)
    assert column_pearson(measured, np.conj(s)[:, None] * t).min() > 0.999999


def test_phase_conjugation_reaches_the_phase_only_theory_on_average():
    n = 256
    ratios = []
    for seed in range(20):
        t, _ = synthetic(n, pixels=20, seed=seed)
        phases = focus_phases(t, 3)
        focus = np.abs(np.exp(1j * phases) @ t[3]) ** 2
        mean_speckle = np.sum(np.abs(t[3]) ** 2)  # <|Σ t e^{iφ}|²> over random φ
        ratios.append(focus / mean_speckle / theory_enhancement(n))
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.05)


def test_the_default_tm_basis_is_one_mode_per_macropixel_where_a_power_of_two_allows():
    from labpnn.procedures.calibration.optical_common import full_basis_modes, group_blocks

    assert full_basis_modes((16, 16)) == 256 and full_basis_modes((32, 32)) == 1024
    assert full_basis_modes((4, 8)) == 32
    # 20x20: 400, 100 and 25 blocks are not powers of two; 4x4 blocks of 5x5 are
    assert full_basis_modes((20, 20)) == 16
    assert group_blocks((20, 20), 16).max() == 15
    with pytest.raises(ValueError, match="no power-of-two number of square blocks"):
        full_basis_modes((3, 3))


@pytest.mark.parametrize("station, modes", [("optical-sim", 256), ("optical-control-sim", 1024)])
def test_calibrate_tm_estimates_the_full_basis_of_the_station_by_default(
    labpnn, lab_dirs, station, modes
):
    res = labpnn("run", "calibrate-tm", "--station", station, "--dry-run")
    assert res.returncode == 0, res.stderr
    assert f"about {4 * modes + 8 + 16 + 16} hardware queries" in res.stdout + res.stderr
