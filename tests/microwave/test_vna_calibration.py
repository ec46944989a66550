"""scikit-rf calibrations on the mock remove the hidden error boxes."""

from __future__ import annotations

import numpy as np
import pytest

from labpnn.calibration.vna import (
    build_one_port,
    build_solt,
    calibration_arrays,
    calibration_from_arrays,
    ideal_standards,
    max_error,
    measure_standards,
    operator_connect,
)
from labpnn.errors import BadInput

ALL = ("S11", "S21", "S12", "S22")


def calibrated_solt(world, vna, cal_kit=None):
    cal = build_solt(measure_standards(vna, world.operator_hook, (1, 2)), cal_kit)
    vna.define_traces(list(ALL))
    vna.apply_calibration(cal)
    return cal


def test_solt_without_noise_recovers_the_true_cavity(world, connect_vna, rng):
    vna = connect_vna(world)
    world.set_configuration(rng.integers(0, 2, 40))
    calibrated_solt(world, vna)
    net = vna.sweep()
    truth = world.ground_truth()
    assert world.connection[0] == "device"  # measure_standards reconnected the device
    for p in ALL:
        assert max_error(net.s[:, int(p[1]) - 1, int(p[2]) - 1], truth[p.lower()]) < 1e-3
    # and the raw data were far from it
    vna.apply_calibration(None)
    assert max_error(vna.sweep().s[:, 1, 0], truth["s21"]) > 0.1


def test_one_port_without_noise_recovers_the_input_reflection(world, connect_vna, rng):
    vna = connect_vna(world)
    world.set_configuration(rng.integers(0, 2, 40))
    for port in (1, 2):
        cal = build_one_port(measure_standards(vna, world.operator_hook, (port,)), port)
        vna.define_traces([f"S{port}{port}"])
        vna.apply_calibration(cal, port=port)
        corrected = vna.sweep_arrays()[f"S{port}{port}"]
        assert max_error(corrected, world.ground_truth()[f"gamma_in_port{port}"]) < 1e-3


def test_with_noise_the_corrected_data_match_the_truth_within_the_noise(make_world, connect_vna):
    world = make_world(noise=1e-4)  # raw trace noise 1e-3 at 10 kHz, -10 dBm
    vna = connect_vna(world)
    world.set_configuration(np.arange(40) % 3 == 0)
    calibrated_solt(world, vna)
    sweeps = np.array([vna.sweep_arrays()["S21"] for _ in range(8)])
    scatter = np.sqrt(np.mean(np.abs(sweeps - sweeps.mean(axis=0)) ** 2) * 8 / 7)
    truth = world.ground_truth()["s21"]
    error = np.abs(sweeps[0] - truth)
    assert 1e-4 < scatter < 1e-2
    assert np.sqrt(np.mean(error**2)) < 2.0 * scatter  # rms: noise of sweep + standards
    assert error.max() < 6.0 * scatter


def test_a_declared_cal_kit_with_offsets_is_honoured(make_world, connect_vna):
    kit = {
        "short": {"delay_s": 30e-12},
        "open": {"delay_s": 30e-12, "c_f": 50e-15},
        "load": {"gamma": 0.02},
        "thru": {"delay_s": 50e-12},
    }
    world = make_world(noise=0.0, cal_kit=kit)
    vna = connect_vna(world)
    calibrated_solt(world, vna, kit)
    good = max_error(vna.sweep().s[:, 1, 0], world.ground_truth()["s21"])
    calibrated_solt(world, vna, None)  # pretending the offset standards are ideal
    bad = max_error(vna.sweep().s[:, 1, 0], world.ground_truth()["s21"])
    assert good < 1e-3 < bad


def test_the_operator_route_connects_standards_through_the_world(world, connect_vna):
    from labpnn.operator import Operator

    class StationLike:
        instruments: dict = {}

        def __init__(self, world):
            self.world = world

    operator = Operator(StationLike(world), unattended=True)
    vna = connect_vna(world)
    measured = measure_standards(vna, operator_connect(operator), (1,))
    assert [r["standard"] for r in operator.requests] == ["short", "open", "load", "device"]
    assert abs(build_one_port(measured, 1).coefs["directivity"]).max() < 0.2


def test_a_calibration_from_another_sweep_grid_is_refused(world, connect_vna):
    vna = connect_vna(world, traces=ALL)
    calibrated_solt(world, vna)
    vna.points = 101
    with pytest.raises(BadInput, match="calibration was taken on 201 points"):
        vna.sweep()


def test_ideal_standards_have_the_textbook_reflections(world, connect_vna):
    vna = connect_vna(world)
    import skrf

    ideals = ideal_standards(skrf.Frequency.from_f(vna.frequencies_hz(), unit="Hz"))
    assert np.allclose(ideals["short"].s[:, 0, 0], -1)
    assert np.allclose(ideals["open"].s[:, 0, 0], 1)
    assert np.allclose(ideals["load"].s[:, 0, 0], 0)
    assert np.allclose(ideals["thru"].s[:, 1, 0], 1)


def test_a_calibration_stored_as_arrays_corrects_exactly_like_the_original(world, connect_vna):
    vna = connect_vna(world)
    solt = calibrated_solt(world, vna)
    one = build_one_port(measure_standards(vna, world.operator_hook, (1,)), 1)
    for cal, traces in ((solt, list(ALL)), (one, ["S11"])):
        arrays = calibration_arrays(cal)
        assert all(isinstance(v, np.ndarray) for v in arrays.values())
        vna.define_traces(traces)
        vna.apply_calibration(cal)
        expected = vna.sweep_arrays()
        vna.apply_calibration(calibration_from_arrays(arrays))
        again = vna.sweep_arrays()
        for p in traces:
            assert np.allclose(again[p], expected[p], atol=1e-9)
