"""The microwave procedures as a lab runs them, including instruments that fail mid-run."""

import json

import h5py


def show(labpnn, res):
    return json.loads(labpnn("show", res.stdout.strip().splitlines()[-1], "--json").stdout)


def test_calibrate_vna_removes_the_hidden_error_boxes(labpnn, lab_dirs):
    res = labpnn(
        "run",
        "calibrate-vna",
        "--station",
        "microwave-sim",
        "--no-progress",
        "--station-set",
        "bench.simulation.noise.floor=0",
    )
    assert res.returncode == 0, res.stderr
    shown = show(labpnn, res)
    assert shown["summary"]["max_error"] < 1e-3
    assert shown["safe_state"]["vna"] == "ok"
    assert list((lab_dirs[1] / "calibrations").glob("microwave-sim-vna-*.npz"))


def test_one_port_calibration_with_noise_stays_small(labpnn):
    res = labpnn(
        "run",
        "calibrate-vna",
        "--station",
        "microwave-sim",
        "--set",
        "method=one-port",
        "--no-progress",
    )
    assert res.returncode == 0, res.stderr
    assert show(labpnn, res)["summary"]["max_error"] < 0.05


def test_map_metasurface_sees_configurations_well_above_the_noise(labpnn):
    res = labpnn(
        "run",
        "map-metasurface",
        "--station",
        "microwave-sim",
        "--set",
        "n_configs=8",
        "--no-progress",
    )
    assert res.returncode == 0, res.stderr
    summary = show(labpnn, res)["summary"]
    assert summary["snr_median"] > 10
    assert summary["noise_floor"] < summary["config_spread"]


def test_a_vna_that_stops_answering_fails_the_run_keeps_data_and_attempts_rf_off(labpnn):
    res = labpnn(
        "run",
        "map-metasurface",
        "--station",
        "microwave-sim",
        "--set",
        "n_configs=20",
        "--station-set",
        "bench.simulation.faults.vna_hang_after_sweeps=10",
        "--station-set",
        "instruments.vna.timeout_s=0.5",
        "--no-progress",
        timeout=120,
    )
    assert res.returncode == 1, res.stderr
    path = res.stdout.strip().splitlines()[-1]
    shown = show(labpnn, res)
    assert shown["status"] == "failed"
    assert "timeout" in shown["error"].lower() or "did not answer" in shown["error"].lower()
    assert "vna" in shown["safe_state"]  # RF off was attempted and its outcome recorded
    with h5py.File(path, "r") as f:
        assert f["traces/s21"].shape[0] >= 9  # the sweeps before the hang are kept


def test_a_metasurface_that_vanishes_mid_run_fails_clearly_and_safely(labpnn):
    res = labpnn(
        "run",
        "map-metasurface",
        "--station",
        "microwave-sim",
        "--set",
        "n_configs=20",
        "--station-set",
        "bench.simulation.faults.metasurface_vanish_after_sets=5",
        "--no-progress",
        timeout=120,
    )
    assert res.returncode == 1, res.stderr
    shown = show(labpnn, res)
    assert shown["status"] == "failed"
    assert "metasurface" in shown["error"].lower()
    assert shown["safe_state"]["vna"] == "ok"  # RF is off even though the controller is gone
