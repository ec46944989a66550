"""Excitation helpers: multi-tones read back exactly, low crest factor, Farina sweeps."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from labpnn.drivers.audio.alignment import find_latency, sync_mark
from labpnn.errors import ConfigError, InstrumentError
from labpnn.excitation import (
    MultitonePlan,
    crest_factor,
    exponential_sweep,
    impulse_response_from_sweep,
    multitone,
    sweep_inverse_filter,
)

FS = 48000


def test_a_multitone_has_the_requested_amplitude_at_each_tone_and_nothing_else():
    tones = [300.0, 470.0, 1230.0, 5000.0]
    amps = [0.1, 0.05, 0.2, 0.01]
    signal = multitone(tones, amps, 0.1, FS, fade_s=0)  # whole cycles of every tone
    spectrum = np.abs(np.fft.rfft(signal)) * 2 / len(signal)
    bins = np.rint(np.array(tones) * 0.1).astype(int)
    np.testing.assert_allclose(spectrum[bins], amps, rtol=1e-9)
    spectrum[bins] = 0
    assert spectrum.max() < 1e-12


def test_newman_phases_keep_the_crest_factor_low():
    tones = np.linspace(300, 2200, 20)
    zero = crest_factor(multitone(tones, 1.0, 0.1, FS, phases="zero", fade_s=0))
    newman = crest_factor(multitone(tones, 1.0, 0.1, FS, phases="newman", fade_s=0))
    schroeder = crest_factor(multitone(tones, np.linspace(1, 0.2, 20), 0.1, FS, "schroeder", 0))
    assert zero == pytest.approx(np.sqrt(2 * 20), rel=1e-6)
    assert newman < 2.5 and schroeder < 2.5 < zero


def test_the_plan_puts_tones_on_bins_and_repeats_one_period():
    plan = MultitonePlan.from_layout({"n_tones": 20, "f_min_hz": 301, "f_max_hz": 2203})
    assert plan.tones_hz[0] == 300.0 and plan.tones_hz[-1] == 2200.0
    amps = np.random.default_rng(0).uniform(0, 0.05, 20)
    burst = plan.signal(amps)
    assert len(burst) == plan.n_samples
    window = plan.window(burst)
    np.testing.assert_allclose(window, plan.period(amps), atol=1e-15)
    before = burst[plan.window_start - plan.n_window : plan.window_start]
    np.testing.assert_allclose(before, window, atol=1e-15)  # periodic during the settle
    np.testing.assert_allclose(plan.tone_amplitudes(window), amps, atol=1e-12)
    assert abs(burst[0]) < 1e-3 and abs(burst[-1]) < 1e-3  # faded, no click


def test_tones_sharing_a_bin_are_refused_with_advice():
    with pytest.raises(ConfigError, match="same 10 Hz bin"):
        MultitonePlan.on_bins([300.0, 303.0])
    with pytest.raises(ConfigError, match="between 10 Hz"):
        MultitonePlan.on_bins([30000.0])


def test_the_exponential_sweep_rises_exponentially_in_frequency():
    sweep = exponential_sweep(100, 10000, 1.0, FS, fade_s=0)
    analytic = scipy.signal.hilbert(sweep)
    inst_f = np.diff(np.unwrap(np.angle(analytic))) * FS / (2 * np.pi)
    t = np.arange(len(inst_f)) / FS
    middle = slice(2000, len(inst_f) - 2000)
    expected = 100 * np.exp(t * np.log(100))
    np.testing.assert_allclose(inst_f[middle], expected[middle], rtol=0.02)


def test_farina_deconvolution_recovers_a_known_impulse_response():
    h = np.zeros(400)
    h[37], h[120], h[121] = 0.8, -0.3, 0.2
    sweep = exponential_sweep(50, 20000, 0.5, FS)
    recording = np.convolve(sweep, h)[: len(sweep) + 400]
    inverse = sweep_inverse_filter(sweep, 50, 20000, FS)
    estimate = impulse_response_from_sweep(recording, inverse, 400)
    assert np.argmax(np.abs(estimate)) == 37
    # inside the swept band the estimate's spectrum is the true one
    freqs = np.fft.rfftfreq(4096, 1 / FS)
    band = (freqs > 500) & (freqs < 15000)
    ratio = np.fft.rfft(estimate, 4096)[band] / np.fft.rfft(h, 4096)[band]
    np.testing.assert_allclose(np.abs(ratio), 1, atol=0.05)
    np.testing.assert_allclose(np.angle(ratio), 0, atol=0.05)


def test_the_sync_mark_is_found_at_the_exact_lag_and_its_absence_is_reported():
    mark = sync_mark(FS)
    rng = np.random.default_rng(3)
    for lag in rng.integers(0, 2400, 20):
        recording = np.zeros(len(mark) + 2400)
        recording[lag : lag + len(mark)] = 0.3 * mark
        recording += 1e-4 * rng.standard_normal(len(recording))
        assert find_latency(mark, recording, 2400) == lag
    with pytest.raises(InstrumentError, match="loopback cable"):
        find_latency(mark, 1e-4 * rng.standard_normal(5000), 2400)


@settings(max_examples=60, deadline=None)
@given(
    lag=st.integers(0, 2400),
    gain=st.floats(0.05, 1.0),
    noise=st.floats(0.0, 0.01),
    seed=st.integers(0, 2**16),
)
def test_the_sync_mark_is_found_for_any_lag_gain_and_modest_noise(lag, gain, noise, seed):
    mark = sync_mark(FS)
    rng = np.random.default_rng(seed)
    recording = noise * rng.standard_normal(len(mark) + 3000)
    recording[lag : lag + len(mark)] += gain * mark
    assert find_latency(mark, recording, 2400) == lag
