"""The loop latency changes on every call; the loopback recovers it to the sample."""

from __future__ import annotations

import numpy as np
import pytest

from labpnn.calibration.audio import measure_latency, transfer_function
from labpnn.errors import InstrumentError

from .conftest import build_card


def test_alignment_recovers_the_delay_to_within_one_sample_on_50_random_calls(sim_card):
    world, card = sim_card
    plan = world.plan
    amps = np.random.default_rng(7).uniform(0, 1, (50, plan.n_tones)) / plan.n_tones
    found, truth = [], []
    for row in amps:
        card.measure(plan.signal(row))
        found.append(card.last_latency_samples)
        truth.append(world.ground_truth()["latency_samples"])
    found, truth = np.array(found), np.array(truth)
    assert np.max(np.abs(found - truth)) <= 1
    assert np.std(truth) > 100  # the latency really wandered between calls


def test_calibrate_latency_with_a_chirp_matches_the_simulators_truth(sim_card):
    world, card = sim_card
    result = measure_latency(card, n_calls=50)
    truth = world.ground_truth()["latency_history"][-50:]
    assert np.max(np.abs(result.latency_samples - truth)) <= 1
    summary = result.summary()
    assert set(summary) == {"latency_samples", "latency_std_samples"}
    assert summary["latency_samples"] == pytest.approx(truth.mean(), abs=1)
    assert summary["latency_std_samples"] == pytest.approx(truth.std(), abs=1)


def test_the_chirp_also_measures_the_rooms_impulse_response(sim_card):
    world, card = sim_card
    result = measure_latency(card, n_calls=4, amplitude=0.05)
    truth = world.ground_truth()["impulse_response"]
    n = min(len(truth), len(result.impulse_response))
    assert np.corrcoef(result.impulse_response[:n], truth[:n])[0, 1] > 0.95
    assert abs(int(np.median(result.acoustic_delay_samples)) - int(np.argmax(np.abs(truth)))) <= 2


def test_the_transfer_at_the_working_tones_matches_the_small_signal_truth(sim_card):
    world, card = sim_card
    result = transfer_function(card, world.plan.tones_hz, amplitude=0.002, n_average=4)
    truth = world.ground_truth()["small_signal_transfer"]
    error = np.abs(result.transfer - truth) / np.abs(truth)
    assert np.median(error) < 0.02 and error.max() < 0.1


def test_a_missing_loopback_cable_is_reported_not_misaligned():
    # the driver expects the cable on output 2 -> input 2; the bench has it on output 3
    world, card = build_card(wiring={"loopback": [3, 2]})
    with pytest.raises(InstrumentError, match="loopback cable"):
        card.measure(world.plan.signal(np.full(world.plan.n_tones, 0.02)))
