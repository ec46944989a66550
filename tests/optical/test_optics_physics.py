"""Lab-notebook checks of the simulated optics: media, drift, LUT, geometry, sensor, LC lag."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labpnn.bench.macropixels import MacropixelLayout
from labpnn.mock_instruments.physics.lc_settling import LCResponse
from labpnn.mock_instruments.physics.optics import (
    FiberMedium,
    IIDMedium,
    SLMGeometry,
    slm_phase_lut,
)
from labpnn.mock_instruments.physics.sensor import SensorModel

CELLS = (12, 12)
ACTIVE = np.zeros(CELLS, dtype=bool)
ACTIVE[2:10, 2:10] = True


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    return float(abs(np.vdot(a, b)) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_iid_tm_is_circular_gaussian_with_unit_mean_speckle():
    tm = IIDMedium(1024, CELLS, seed=3, active=ACTIVE).tm
    n = CELLS[0] * CELLS[1]
    assert tm.shape == (1024, n)
    assert np.mean(np.abs(tm) ** 2) == pytest.approx(1 / n, rel=0.02)  # CN(0, 1/N)
    assert abs(np.mean(tm**2)) < 0.02 / n  # circular: E[T²] = 0
    assert abs(np.mean(tm.real**2) - np.mean(tm.imag**2)) < 0.03 / n
    field = tm @ np.exp(2j * np.pi * np.random.default_rng(0).random(n))
    intensity = np.abs(field) ** 2
    assert intensity.mean() == pytest.approx(1.0, rel=0.1)  # mean speckle intensity 1
    assert intensity.std() / intensity.mean() == pytest.approx(1.0, abs=0.1)  # speckle contrast


def test_fibre_tm_carries_only_its_guided_modes():
    medium = FiberMedium((32, 32), CELLS, n_modes=60, seed=3, active=ACTIVE)
    tm = medium.tm
    singular = np.linalg.svd(tm, compute_uv=False)
    assert np.sum(singular > 1e-8 * singular[0]) == 60  # rank = number of modes
    assert np.allclose(singular[:60], singular[0])  # lossless: all modes transmitted equally
    assert np.mean(np.sum(np.abs(tm) ** 2, axis=1)) == pytest.approx(1.0)  # mean speckle 1
    # the factored propagation equals the matrix
    e = np.exp(1j * np.random.default_rng(1).uniform(0, 6.3, (3, 144)))
    out = medium.propagate(e[:, ACTIVE.ravel()], e[:, ~ACTIVE.ravel()])
    np.testing.assert_allclose(out, e @ tm.T, atol=1e-12)


@pytest.mark.parametrize("kind", ["iid", "fiber"])
def test_drift_decorrelates_at_the_configured_rate(kind):
    rate, dt = 0.1, 0.5  # per second, drift step in seconds
    if kind == "iid":
        medium = IIDMedium(1024, CELLS, seed=5, active=ACTIVE)
    else:
        medium = FiberMedium((32, 32), CELLS, n_modes=120, seed=5, active=ACTIVE)
    t0 = medium.tm.copy()
    measured = {}
    for t in (2.0, 5.0, 10.0):
        medium.advance_to(round(t / dt), rate * dt)
        measured[t] = _pearson(medium.tm, t0)
    for t, corr in measured.items():
        assert corr == pytest.approx(math.exp(-rate * t), abs=0.08), (t, corr)


@pytest.mark.parametrize("kind", ["iid", "fiber"])
def test_an_idle_jump_decorrelates_like_the_steps_it_skips(kind):
    """``jump_to`` (a night between runs) draws once, with the statistics of the skipped steps."""
    rate, dt = 0.1, 0.5
    measured = []
    for seed in range(4):
        if kind == "iid":
            medium = IIDMedium(1024, CELLS, seed=seed, active=ACTIVE)
        else:
            medium = FiberMedium((32, 32), CELLS, n_modes=120, seed=seed, active=ACTIVE)
        t0 = medium.tm.copy()
        medium.jump_to(round(5.0 / dt), rate * dt)
        assert medium.step == 10
        measured.append(_pearson(medium.tm, t0))
        power = np.mean(np.abs(medium.tm) ** 2)
        assert power == pytest.approx(np.mean(np.abs(t0) ** 2), rel=0.05)  # still CN(0, 1/N)
    assert np.mean(measured) == pytest.approx(math.exp(-rate * 5.0), abs=0.05)
    # A jump's innovation is not a step's: stepping from there differs from jumping there.
    stepped = IIDMedium(256, CELLS, seed=2, active=ACTIVE)
    stepped.advance_to(10, 0.05)
    jumped = IIDMedium(256, CELLS, seed=2, active=ACTIVE)
    jumped.jump_to(10, 0.05)
    assert not np.allclose(stepped.tm, jumped.tm)
    assert _pearson(stepped.tm, jumped.tm) == pytest.approx(math.exp(-0.5) ** 2, abs=0.1)


def test_drift_depends_on_time_only_not_on_how_often_it_was_looked_at():
    a = IIDMedium(256, CELLS, seed=2, active=ACTIVE)
    b = IIDMedium(256, CELLS, seed=2, active=ACTIVE)
    for step in range(1, 7):
        a.advance_to(step, 0.05)
    b.advance_to(6, 0.05)
    np.testing.assert_array_equal(a.tm, b.tm)


def test_lut_is_monotonic_and_nearly_linear():
    lut = slm_phase_lut(seed=1, nonlinearity_rad=0.05)
    assert np.all(np.diff(lut) > 0)
    linear = 2 * np.pi * np.arange(256) / 256
    assert 0.005 < np.max(np.abs(lut - linear)) <= 0.05
    np.testing.assert_array_equal(slm_phase_lut(1, 0.0), linear)


def test_world_and_bench_agree_on_where_the_macropixels_are():
    layout = {"macropixels": [6, 10], "reference_border": 3}
    world = SLMGeometry.from_layout(layout, (300, 400))
    bench = MacropixelLayout.from_layout(layout, (300, 400))
    assert (world.cells, world.origin, world.macropixel_px) == (
        bench.cells,
        bench.origin,
        bench.macropixel_px,
    )
    np.testing.assert_array_equal(world.active_mask, bench.active_mask)


def test_cell_field_is_exact_for_uniform_cells_and_averages_mixed_ones():
    geometry = SLMGeometry.from_layout({"macropixels": [4, 4], "reference_border": 1}, (64, 64))
    layout = MacropixelLayout.from_layout({"macropixels": [4, 4], "reference_border": 1}, (64, 64))
    phasor = np.exp(1j * slm_phase_lut(1, 0.03))
    cells = np.random.default_rng(0).integers(0, 256, layout.cells).astype(np.uint8)
    image = layout.slm_image(cells)
    np.testing.assert_array_equal(geometry.input_field(image, phasor), phasor[cells].ravel())
    p, (oy, ox) = layout.macropixel_px, layout.origin
    image[oy : oy + p // 2, ox : ox + p] = 128  # half of the first cell changes
    field = geometry.input_field(image, phasor)
    assert field[0] == pytest.approx((phasor[cells[0, 0]] + phasor[128]) / 2)
    np.testing.assert_array_equal(field[1:], phasor[cells].ravel()[1:])


def test_sensor_without_noise_is_exactly_reproducible_and_clips_at_saturation():
    sensor = SensorModel(seed=1, shot=False, read_e=0.0, full_well_e=10_000)
    mean_e = np.array([[0.0, 1234.5, 9_999.0, 50_000.0]])  # [frames, pixels]
    adu = sensor.digitize(mean_e, 7, 0.002, 16, 0.0)[0]
    np.testing.assert_array_equal(adu, sensor.digitize(mean_e, 99, 0.002, 16, 0.0)[0])
    assert adu[-1] == 65535  # saturated at full scale
    assert adu[1] == round(1234.5 * 65535 / 10_000)
    assert sensor.digitize(mean_e, 0, 0.002, 16, 6.0)[0, 2] == 65535  # gain saturates earlier


@pytest.mark.parametrize("bits", [8, 12, 16])
def test_quantisation_levels_follow_the_pixel_format(bits):
    sensor = SensorModel(seed=1, shot=True, read_e=5.0)
    adu = sensor.digitize(np.linspace(0, 12_000, 5000)[None], 0, 0.002, bits, 0.0)
    assert np.all(adu == np.round(adu)) and adu.min() >= 0 and adu.max() == 2**bits - 1
    step = 10_000 / (2**bits - 1)  # electrons per ADU
    assert len(np.unique(adu)) <= 12_000 / step + 50


def test_shot_noise_is_poisson_like_and_seeded_per_frame():
    sensor = SensorModel(seed=4, shot=True, read_e=0.0, full_well_e=1e9)
    for mean in (20.0, 2000.0):  # exact Poisson below 100 e, its normal limit above
        e = sensor.electrons(np.full((5, 4000), mean), 0)
        assert e.mean() == pytest.approx(mean, rel=0.01)
        assert e.var() == pytest.approx(mean, rel=0.05)
    mixed = np.random.default_rng(0).exponential(300.0, (20, 50))  # both regimes in a frame
    batch = sensor.electrons(mixed, 10)  # 20 frames: split over threads
    for b in range(20):  # a frame is the same alone or in a batch
        np.testing.assert_array_equal(sensor.electrons(mixed[b : b + 1], 10 + b)[0], batch[b])
    assert not np.array_equal(batch[0], sensor.electrons(mixed[:1], 11)[0])


def test_lc_lag_mixes_old_and_new_fields_until_settled():
    old, new = np.ones(4, complex), np.full(4, 1j)
    lc = LCResponse(old, settle_s=0.01)
    lc.present(1.0, new)
    tau = 0.01 / math.log(1000)
    w = math.exp(-0.002 / tau)
    np.testing.assert_allclose(lc.field_at(1.002), old * w + new * (1 - w))
    np.testing.assert_array_equal(lc.field_at(1.01), new)  # settled exactly
    np.testing.assert_array_equal(lc.field_at(0.5), old)
    weights, fields = lc.exposure_fields(1.0, 0.004)  # grabbed too early: 8 samples of a mix
    assert len(weights) == 8 and weights.sum() == pytest.approx(1)
    assert np.all(np.abs(fields - new) > 0)
    weights, fields = lc.exposure_fields(1.0 + 0.01, 0.004)
    assert len(weights) == 1 and np.array_equal(fields[0], new)
    lc.present(1.02, old)  # a frame arriving mid-exposure is integrated too
    assert len(lc.exposure_fields(1.018, 0.004)[0]) == 8
