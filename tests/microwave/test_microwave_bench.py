"""The microwave PhysicalLayer: encoding, both transports, counters, faults mid-run."""

from __future__ import annotations

import numpy as np
import pytest

from labpnn.bench import make_bench
from labpnn.bench.microwave import MicrowaveBench, quantise
from labpnn.calibration.vna import build_solt, measure_standards
from labpnn.errors import ConfigError, InstrumentTimeout
from labpnn.station import StationConfig


def test_quantiser_clips_to_unit_range_and_writes_lsb_first():
    x = np.array([[-0.5, 0.0, 0.26, 0.5, 0.74, 0.99, 1.0, 7.0]])
    bits = quantise(x, 2).reshape(8, 2)
    levels = bits[:, 0] + 2 * bits[:, 1]
    assert levels.tolist() == [0, 0, 1, 2, 2, 3, 3, 3]
    with pytest.raises(ValueError, match="NaN"):
        quantise(np.array([[np.nan]]), 2)


def test_bundled_stations_load_and_check():
    notes = StationConfig.load("microwave-sim").check()
    assert any("KeysightENA (simulated)" in n for n in notes)
    lab = StationConfig.load("microwave-lab.example")
    assert not lab.simulated and lab.bench.kind == "microwave"
    assert lab.instruments["vna"].limits == {"power_dbm": [-40, 0]}


def test_full_and_direct_paths_give_the_same_outputs_for_the_same_seed(connect_station, rng):
    x = rng.random((6, 20))
    outputs, clocks = {}, {}
    for transport in ("full", "direct"):
        station = connect_station(f"bench.simulation.transport={transport}")
        bench = make_bench(station)
        assert bench.direct is (transport == "direct")
        outputs[transport] = bench(x).numpy()
        assert bench.queries == 6 and bench.n_in == 20 and bench.n_out == 20
        clocks[transport] = (bench.hardware_s, station.world.clock.now())
        assert np.array_equal(station.world.bits, bench.encode(x[-1:])[0])
    assert np.allclose(outputs["full"], outputs["direct"], rtol=1e-6, atol=1e-7)
    assert clocks["full"] == pytest.approx(clocks["direct"])
    assert clocks["full"][0] == pytest.approx(6 * (2e-4 + 2e-3 + 201 * (1e-4 + 5e-6) + 1e-3))


def test_both_paths_agree_with_a_two_port_calibration_too(connect_station, rng):
    x = rng.random((3, 20))
    outputs = {}
    for transport in ("full", "direct"):
        station = connect_station(f"bench.simulation.transport={transport}")
        vna = station["vna"]
        vna.configure(2.0e9, 2.5e9, 201, 1e4, -10)
        cal = build_solt(measure_standards(vna, station.world.operator_hook, (1, 2)))
        bench = MicrowaveBench(station, calibration=cal)
        outputs[transport] = bench(x).numpy()
    assert np.allclose(outputs["full"], outputs["direct"], rtol=1e-6, atol=1e-7)


def test_outputs_depend_on_the_inputs_and_sit_at_the_chosen_frequencies(connect_station, rng):
    station = connect_station(
        "bench.layout.frequencies_hz=[2.1e9, 2.2e9, 2.3001e9]", "bench.simulation.noise=0"
    )
    bench = make_bench(station)
    assert bench.output_frequencies_hz.tolist() == [2.1e9, 2.2e9, 2.3e9]
    y = bench(rng.random((4, 20))).numpy()
    assert y.shape == (4, 3) and np.ptp(y, axis=0).min() > 1e-3


def test_layout_errors_are_config_errors(connect_station):
    station = connect_station("bench.layout.n_features=30")
    with pytest.raises(ConfigError, match="30 features × 2 bits do not fit on 40"):
        make_bench(station)
    station = connect_station("bench.layout.frequencies_hz=[3.0e9]")
    with pytest.raises(ConfigError, match="inside the sweep"):
        make_bench(station)


def test_checkpointed_world_resumes_with_identical_outputs(connect_station, rng):
    x = rng.random((4, 20))
    station = connect_station()
    bench = make_bench(station)
    bench(x[:2])
    state = bench.state_dict()
    expected = bench(x[2:]).numpy()
    bench.load_state_dict(state)
    assert np.array_equal(bench(x[2:]).numpy(), expected)


def test_vna_hanging_mid_run_fails_clearly_and_rf_is_switched_off(connect_station, rng):
    station = connect_station(
        "bench.simulation.faults.vna_hang_after_sweeps=2", "instruments.vna.timeout_s=0.3"
    )
    bench = make_bench(station)
    with pytest.raises(InstrumentTimeout, match=r"vna: no reply to '\*OPC\?'"):
        bench(rng.random((4, 20)))
    # The hung VNA took the command but cannot confirm it: that is not "ok".
    outcome = station.safe_state()["vna"]
    assert outcome.startswith("failed: InstrumentTimeout")
    assert "did not confirm" in outcome and "RF may still be on" in outcome
    assert station.world.vna.state.rf_on is False


def test_snapshot_lists_vna_settings_with_units_and_limits(connect_station):
    station = connect_station()
    make_bench(station)
    snap = station.snapshot()
    vna = snap["components"]["vna"]["parameters"]
    assert vna["power_dbm"]["value"] == -10 and vna["power_dbm"]["unit"] == "dBm"
    assert vna["points"]["value"] == 201
    meta = snap["components"]["metasurface"]["parameters"]
    assert meta["n_bits"]["value"] == 40


def test_a_dropped_vna_session_is_reopened_and_rf_switched_off(connect_station, rng):
    from labpnn.errors import DeviceLost

    station = connect_station(
        "bench.simulation.faults.vna_drop_after_sweeps=3", "instruments.vna.timeout_s=0.5"
    )
    bench = make_bench(station)
    station["vna"].rf_on = True
    with pytest.raises(DeviceLost, match="closed the connection"):
        bench(rng.random((6, 20)))
    world = station.world
    assert world.vna.state.rf_on is True  # the VNA is still there, with its RF on
    world.vna.log.clear()
    result = station.safe_state()
    assert result["vna"] == "ok"
    assert world.vna.state.rf_on is False
    assert "DeviceLost" in station.reopened["vna"]
    assert "metasurface" not in station.reopened
    # the fresh session only switched the RF off: the station's settings were not re-applied
    assert [line for line in world.vna.log if "OUTP" not in line] == []


def test_an_instrument_that_cannot_be_reopened_is_reported_failed(connect_station, rng):
    from labpnn.errors import DeviceLost

    station = connect_station("bench.simulation.faults.metasurface_vanish_after_sets=3")
    with pytest.raises(DeviceLost):
        make_bench(station)(rng.random((5, 20)))
    result = station.safe_state()
    assert result["metasurface"].startswith("failed: DeviceLost")
    assert "reopening it failed too" in result["metasurface"]
    assert result["vna"] == "ok" and station.world.vna.state.rf_on is False
