"""The simulated world: full and direct paths agree, state round-trips, faults, clocks."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from labpnn.bench.acoustic import AcousticBench
from labpnn.errors import ConfigError, DeviceLost, InstrumentError, InstrumentTimeout

from .conftest import build_card


def inputs(n, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, 20))


def test_full_and_direct_paths_give_the_same_outputs_for_the_same_seed(connect_station):
    full = AcousticBench(connect_station("bench.simulation.seed=3"))
    direct = AcousticBench(
        connect_station("bench.simulation.seed=3", "bench.simulation.transport=direct")
    )
    assert direct.direct and not full.direct
    x = inputs(12)
    y_full, y_direct = full(x).numpy(), direct(x).numpy()
    np.testing.assert_allclose(y_full, y_direct, rtol=1e-5, atol=1e-7)
    assert full.hardware_s == pytest.approx(direct.hardware_s)
    truth_full = full.station.world.ground_truth()["latency_history"]
    truth_direct = direct.station.world.ground_truth()["latency_history"]
    np.testing.assert_array_equal(truth_full, truth_direct)
    # a second batch continues the same per-call streams on both paths
    np.testing.assert_allclose(full(x[:4]).numpy(), direct(x[:4]).numpy(), rtol=1e-5, atol=1e-7)


def test_direct_path_outputs_match_with_drift_switched_on(connect_station):
    sets = ("bench.simulation.drift_per_s=1e-3", "bench.simulation.drift_step_s=0.5")
    full = AcousticBench(connect_station(*sets))
    direct = AcousticBench(connect_station(*sets, "bench.simulation.transport=direct"))
    x = inputs(8, seed=2)
    np.testing.assert_allclose(full(x).numpy(), direct(x).numpy(), rtol=1e-5, atol=1e-7)
    assert full.station.world.cavity.speed_factor != 1.0


@pytest.mark.parametrize("transport", ["full", "direct"])
def test_a_saved_world_state_reproduces_the_following_outputs(connect_station, transport):
    bench = AcousticBench(connect_station(f"bench.simulation.transport={transport}"))
    bench(inputs(3))
    state = bench.state_dict()
    after = bench(inputs(4, seed=9)).numpy()
    # restore into the same world, and into a freshly built one
    bench.load_state_dict(state)
    np.testing.assert_array_equal(bench(inputs(4, seed=9)).numpy(), after)
    fresh = AcousticBench(connect_station(f"bench.simulation.transport={transport}"))
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh(inputs(4, seed=9)).numpy(), after)
    for value in state.values():  # numpy arrays and JSON scalars only, no pickle
        assert isinstance(value, (int, float, np.ndarray))


@pytest.mark.parametrize("transport", ["full", "direct"])
def test_nan_fault_spoils_the_frames_after_n_calls(connect_station, transport):
    bench = AcousticBench(
        connect_station(
            f"bench.simulation.transport={transport}", "bench.simulation.faults.nan_after_calls=3"
        )
    )
    y = bench(inputs(5)).numpy()
    assert np.all(np.isfinite(y[:3])) and np.all(np.isnan(y[3:]))


@pytest.mark.parametrize("transport", ["full", "direct"])
def test_an_unplugged_card_is_a_clear_device_lost(connect_station, transport):
    bench = AcousticBench(
        connect_station(
            f"bench.simulation.transport={transport}",
            "bench.simulation.faults.unplug_after_calls=2",
        )
    )
    with pytest.raises(DeviceLost, match="Device unavailable"):
        bench(inputs(4))
    assert bench.station.world.call_index == 3


def test_a_hung_playback_times_out_and_stop_aborts_it():
    world, card = build_card(faults={"hang_after_calls": 0, "hang_s": 0.2})
    signal = world.plan.signal(np.full(20, 0.02))
    t0 = time.perf_counter()
    with pytest.raises(InstrumentTimeout, match="timed out"):
        card.measure(signal)
    assert time.perf_counter() - t0 > 0.15  # it really waited for the hung playback

    world, card = build_card(faults={"hang_after_calls": 0, "hang_s": 30})
    errors = []

    def play():
        try:
            card.measure(signal)
        except InstrumentError as exc:
            errors.append(exc)

    worker = threading.Thread(target=play)
    worker.start()
    time.sleep(0.2)
    card.safe_state()  # sounddevice.stop() from another thread, as an abort would
    worker.join(timeout=5)
    assert not worker.is_alive() and "stop()" in str(errors[0])
    assert card.output_level == 0.0


def test_drift_multiplier_speeds_up_the_drift():
    factors = {}
    for multiplier in (1, 10):
        world, _ = build_card(drift_per_s=1e-4, faults={"drift_multiplier": multiplier})
        world.clock.advance(3600)
        factors[multiplier] = world._speed_factor(world.clock.now()) - 1
    assert factors[10] == pytest.approx(10 * factors[1])
    assert 1e-4 < abs(factors[1]) < 1e-2


def test_fast_mode_costs_no_wall_time_and_real_time_mode_waits():
    world, card = build_card()
    signal = world.plan.signal(np.full(20, 0.02))
    duration = (card.sync_samples + len(signal) + card.pad_samples) / 48000 + 0.01
    heard = []
    card.data_hooks.add(lambda kind, wave: heard.append((kind, len(wave))))  # live views
    t0 = time.perf_counter()
    card.measure(signal)
    fast_wall = time.perf_counter() - t0
    assert heard == [("waveform", card.sync_samples + len(signal) + card.pad_samples)]
    assert world.clock.now() == pytest.approx(duration)

    world, card = build_card(clock="real-time")
    t0 = time.perf_counter()
    card.measure(signal)
    real_wall = time.perf_counter() - t0
    assert real_wall >= duration - 1e-3  # it waited for the sound to play
    assert fast_wall < real_wall  # the same computation without the wait (no absolute bound)


def test_simulation_mistakes_are_config_errors():
    with pytest.raises(ConfigError, match="unknown key"):
        build_card(colour="blue")
    with pytest.raises(ConfigError, match="lengthen settle_s"):
        build_card(layout={"settle_s": 0.05})
    with pytest.raises(ConfigError, match="raise max_latency_s"):
        build_card(options={"max_latency_s": 0.01})
    with pytest.raises(ConfigError, match="unknown cavity parameter"):
        build_card(cavity={"wobble": 1})
    world, _ = build_card(wiring={"mic": 3})
    with pytest.raises(ConfigError, match="would record silence"):
        world.measure_amplitudes(np.full((1, 20), 0.01))
