"""The cavity simulator: seeded, decaying, and nonlinear enough to mix tones."""

from __future__ import annotations

import numpy as np

from labpnn.mock_instruments.physics.acoustics import AcousticCavity, CavityParams

from .conftest import build_card


def test_the_same_seed_gives_the_same_cavity_and_another_seed_another():
    a, b = AcousticCavity(CavityParams(seed=4)), AcousticCavity(CavityParams(seed=4))
    c = AcousticCavity(CavityParams(seed=5))
    np.testing.assert_array_equal(a.impulse_responses, b.impulse_responses)
    n = min(a.ir_length, c.ir_length)
    assert np.corrcoef(a.impulse_responses[0, :n], c.impulse_responses[0, :n])[0, 1] < 0.5


def test_the_impulse_response_has_rung_down_by_80_db_at_its_end():
    cavity = AcousticCavity(CavityParams())
    h = cavity.impulse_responses[0]
    assert np.max(np.abs(h[-200:])) < 1e-4 * np.max(np.abs(h))
    assert cavity.mode_frequencies_hz.min() > 150  # 0.8 m x 0.6 m: first mode near 214 Hz


def test_scatterers_shift_the_modes_of_the_empty_box():
    empty = AcousticCavity(CavityParams(scatterers=0, max_mode_hz=1000))
    cluttered = AcousticCavity(CavityParams(scatterers=6, max_mode_hz=1000))
    n = min(len(empty.mode_omega), len(cluttered.mode_omega))
    shift = np.abs(cluttered.mode_frequencies_hz[:n] / empty.mode_frequencies_hz[:n] - 1)
    assert 0.001 < np.median(shift) < 0.2


def test_without_membranes_at_low_level_the_cavity_is_linear():
    world, _ = build_card(cavity={"membranes": 0, "speaker_saturation_fs": 10.0},
                          noise={"mic_rms_fs": 0.0})  # fmt: skip
    amps = np.random.default_rng(1).uniform(0, 1, (3, 20)) / 20
    measured = world.measure_amplitudes(amps)
    predicted = np.abs(world.ground_truth()["small_signal_transfer"]) * amps * 0.5
    np.testing.assert_allclose(measured, predicted, rtol=1e-3, atol=1e-6)


def test_the_membranes_mix_tones_the_output_at_tone_k_follows_tone_j():
    world, _ = build_card()
    amps = np.full((1, 20), 0.6 / 20)
    repeat = world.measure_amplitudes(np.repeat(amps, 2, axis=0))
    noise = np.abs(repeat[1] - repeat[0])  # what changes between two calls by noise alone
    for j in (2, 11):
        changed = amps.copy()
        changed[0, j] = 1.0 / 20  # only tone j is louder
        delta = np.abs(world.measure_amplitudes(changed)[0] - repeat[0])
        others = np.delete(delta, j)
        assert np.sum(others > 10 * np.delete(noise, j) + 1e-6) >= 5, (j, others, noise)
    # and the response is not proportional: doubling every input does not double the outputs
    low, high = world.measure_amplitudes(np.vstack([amps / 2, amps]))
    assert np.median(np.abs(high / (2 * low) - 1)) > 0.05
