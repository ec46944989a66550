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
