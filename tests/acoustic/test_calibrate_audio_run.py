"""calibrate-audio as a lab runs it: through the CLI, on the simulated acoustic bench."""

import json


def test_calibrate_audio_reports_latency_and_registers_a_calibration(labpnn, lab_dirs):
    res = labpnn(
        "run",
        "calibrate-audio",
        "--station",
        "acoustic-sim",
        "--set",
        "n_calls=8",
        "--set",
        "n_average=2",
        "--no-progress",
    )
    assert res.returncode == 0, res.stderr
    shown = json.loads(labpnn("show", res.stdout.strip().splitlines()[-1], "--json").stdout)
    summary = shown["summary"]
    # the simulated card draws a fresh latency in 200..2000 samples on every call
    assert 200 <= summary["latency_samples"] <= 2000
    assert summary["latency_std_samples"] > 10
    assert shown["safe_state"] == {"audio": "ok", "all_safe": True}
    assert list((lab_dirs[1] / "calibrations").glob("acoustic-sim-audio-*.npz"))


def test_a_device_lost_mid_calibration_keeps_the_calls_already_made(labpnn, lab_dirs):
    import h5py

    res = labpnn(
        "run", "calibrate-audio", "--station", "acoustic-sim", "--set", "n_calls=8",
        "--station-set", "bench.simulation.faults.unplug_after_calls=5", "--no-progress",
    )  # fmt: skip
    assert res.returncode == 1, res.stderr
    with h5py.File(res.stdout.strip().splitlines()[-1], "r", swmr=True) as f:
        assert f.attrs["status"] == "failed"
        assert 1 <= f["results/latency_samples"].shape[0] < 8
        assert f["traces/impulse_response"].shape[0] == f["results/latency_samples"].shape[0]
