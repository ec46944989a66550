"""The optical calibrations as a lab runs them: CLI, simulated bench, registry, S1 targets."""

import json
import os
import re
import signal
import threading

import numpy as np
import pytest

from labpnn.runner import RunRequest, execute
from labpnn.storage import open_run


def show(labpnn, res):
    assert res.returncode == 0, res.stderr
    return json.loads(labpnn("show", res.stdout.strip().splitlines()[-1], "--json").stdout)


@pytest.mark.timeout(240)
def test_s1_noise_free_tm_matches_truth_and_focus_reaches_theory(labpnn):
    quiet = ["--station-set", "bench.simulation.noise=off"]
    tm = show(
        labpnn,
        labpnn(
            "run", "calibrate-tm", "--station", "optical-sim", *quiet, "--no-progress", timeout=200
        ),
    )
    assert tm["summary"]["pearson"] >= 0.99
    assert tm["summary"]["prediction_pearson"] >= 0.99
    focus = show(
        labpnn,
        labpnn(
            "run",
            "validate-focus",
            "--station",
            "optical-sim",
            *quiet,
            "--no-progress",
            timeout=200,
        ),
    )
    assert focus["summary"]["n_modes"] == 256
    assert focus["summary"]["enhancement_ratio"] >= 0.8


@pytest.mark.timeout(240)
def test_s1_focus_at_20_db_snr_reaches_half_the_theory(labpnn):
    snr = ["--station-set", "bench.simulation.noise=snr20"]
    show(
        labpnn,
        labpnn(
            "run", "calibrate-tm", "--station", "optical-sim", *snr, "--no-progress", timeout=200
        ),
    )
    focus = show(
        labpnn,
        labpnn(
            "run", "validate-focus", "--station", "optical-sim", *snr, "--no-progress", timeout=200
        ),
    )
    assert focus["summary"]["enhancement_ratio"] >= 0.5


def test_validate_focus_without_a_tm_says_to_calibrate_first(labpnn, lab_dirs):
    res = labpnn("run", "validate-focus", "--station", "optical-sim")
    assert res.returncode == 2
    assert "run `labpnn run calibrate-tm --station optical-sim` first" in res.stderr
    assert not list(lab_dirs[0].rglob("*.h5"))


def test_a_simulated_tm_never_satisfies_another_layout(labpnn):
    show(
        labpnn,
        labpnn(
            "run",
            "calibrate-tm",
            "--station",
            "optical-sim",
            "--set",
            "n_modes=16",
            "--no-progress",
        ),
    )
    other = labpnn(
        "run",
        "validate-focus",
        "--station",
        "optical-sim",
        "--station-set",
        "bench.layout.camera_roi=[0,0,32,32]",
    )
    assert other.returncode == 2 and "calibrate-tm" in other.stderr


def test_a_tm_that_fails_validation_is_expired_in_the_registry(labpnn, lab_dirs):
    """A TM that no longer describes the medium (here: its phases scrambled, as a moved
    fibre would) focuses poorly; validate-focus says so and expires it."""
    from labpnn.ledger import Ledger
    from labpnn.registry import CalibrationRegistry
    from labpnn.station import StationConfig

    show(labpnn, labpnn("run", "calibrate-tm", "--station", "optical-sim",
                        "--set", "n_modes=16", "--no-progress"))  # fmt: skip
    ledger = Ledger()
    try:
        registry = CalibrationRegistry.for_config(ledger, StationConfig.load("optical-sim"))
        good = registry.latest("tm")
        arrays = good.arrays()
        rng = np.random.default_rng(0)
        arrays["tm"] = arrays["tm"] * np.exp(2j * np.pi * rng.random(arrays["tm"].shape))
        stale = registry.save("tm", arrays, metrics=good.metrics, valid_for_s=3600)
    finally:
        ledger.close()
    res = labpnn("run", "validate-focus", "--station", "optical-sim", "--no-progress")
    assert res.returncode == 0, res.stderr  # the run itself worked: it measured a bad TM
    focus = json.loads(labpnn("show", res.stdout.strip().splitlines()[-1], "--json").stdout)
    assert focus["summary"]["enhancement_ratio"] < 0.3
    assert f"TM #{stale} no longer describes this medium" in res.stderr
    ledger = Ledger()
    try:
        registry = CalibrationRegistry.for_config(ledger, StationConfig.load("optical-sim"))
        assert registry.latest_valid("tm").id == good.id  # the stale one is expired
    finally:
        ledger.close()


def test_calibrate_camera_finds_the_black_level_and_an_unsaturated_exposure(labpnn):
    black = ["--station-set", "bench.simulation.noise.black_level_adu=100"]
    res = show(
        labpnn,
        labpnn("run", "calibrate-camera", "--station", "optical-sim", *black, "--no-progress"),
    )
    assert res["summary"]["peak_fraction"] <= 0.8
    assert abs(res["summary"]["dark_error_adu"]) < 5


def test_exposure_outside_the_camera_limits_is_bad_input(labpnn, lab_dirs):
    res = labpnn(
        "run",
        "calibrate-tm",
        "--station",
        "optical-sim",
        "--station-set",
        "instruments.camera.settings.exposure_s=0.5",
    )
    assert res.returncode == 2
    assert "exposure_s=0.5 s is outside the lab limit 1e-05..0.1 s" in res.stderr
    assert "Traceback" not in res.stderr and not list(lab_dirs[0].rglob("*.h5"))


@pytest.mark.timeout(120)
def test_sigint_mid_calibration_aborts_keeps_frames_and_blanks_the_slm(monkeypatch, lab_dirs):
    from labpnn.station import Station

    seen = {}
    original_close = Station.close

    def close_and_look(self):
        if "slm" in self.instruments:
            seen["slm"] = self.instruments["slm"].last_frame.copy()
        original_close(self)

    monkeypatch.setattr(Station, "close", close_and_look)

    def interrupt_once_frames_arrive():
        import time

        deadline = time.time() + 60
        while time.time() < deadline:
            for path in lab_dirs[0].rglob("*.h5"):
                try:
                    with open_run(path) as f:
                        if "frames/camera" in f and f["frames/camera"].shape[0] >= 16:
                            os.kill(os.getpid(), signal.SIGINT)
                            return
                except Exception:  # being restructured: next poll
                    pass
            time.sleep(0.05)

    watcher = threading.Thread(target=interrupt_once_frames_arrive, daemon=True)
    watcher.start()
    outcome = execute(
        RunRequest("calibrate-tm", station="optical-sim", show_progress=False, params={"chunk": 8})
    )
    watcher.join(timeout=5)
    # the error says why, should a loaded machine ever end it otherwise (seen once, 2026-12-05)
    assert outcome.status == "aborted" and outcome.exit_code == 130, outcome.error
    import h5py

    with h5py.File(outcome.path, "r") as f:
        assert f.attrs["status"] == "aborted"
        assert f["frames/camera"].shape[0] > 0
        assert dict(f["safe_state"].attrs)["slm"] == "ok"
    assert np.all(seen["slm"] == 0)  # blank: grey 0 everywhere
    # the morning after: the aborted run still gets a report of what it kept
    from labpnn.reports import make_report

    png = make_report(outcome.path, lab_dirs[0] / "aborted.png")
    assert png.stat().st_size > 10_000


def test_a_tm_measured_from_nan_frames_fails_and_is_not_registered(labpnn, lab_dirs):
    res = labpnn(
        "run", "calibrate-tm", "--station", "optical-sim", "--set", "n_modes=16",
        "--station-set", "bench.simulation.faults.nan_after_frames=20",
    )  # fmt: skip
    assert res.returncode == 1, res.stderr
    assert "the tm calibration was not registered" in res.stderr
    assert "NaN or Inf" in res.stderr
    focus = labpnn("run", "validate-focus", "--station", "optical-sim")
    assert focus.returncode == 2  # no TM to focus with: NaN phases never reach the SLM
    assert "calibrate-tm" in focus.stderr


@pytest.mark.parametrize("auto_exposure", [True, False])
def test_a_tm_from_saturated_frames_fails_keeps_its_data_and_is_not_registered(
    labpnn, lab_dirs, auto_exposure
):
    import h5py

    res = labpnn(
        "run", "calibrate-tm", "--station", "optical-sim", "--set", "n_modes=16",
        "--set", f"auto_exposure={auto_exposure}",
        "--station-set", "bench.simulation.faults.saturate=true", "--no-progress",
    )  # fmt: skip
    assert res.returncode == 1, res.stderr
    assert "CameraSaturated" in res.stderr and "reduce the illumination" in res.stderr
    where = "at the shortest allowed exposure" if auto_exposure else "during phase stepping"
    assert re.search(r"\d+\.\d% of the pixel values are at full scale .4095 ADU. " + where
                     + r", exposure_s=[\d.e-]+ s", res.stderr), res.stderr  # fmt: skip
    path = res.stdout.strip().splitlines()[-1]
    shown = json.loads(labpnn("show", path, "--json").stdout)
    assert shown["status"] == "failed" and "CameraSaturated" in shown["error"]
    with h5py.File(path, "r") as f:
        assert "calibration/tm" not in f
        if not auto_exposure:  # the phase-stepping frames are kept
            assert f["frames/camera"].shape[0] == 4 * 16
    focus = labpnn("run", "validate-focus", "--station", "optical-sim")
    assert focus.returncode == 2 and "calibrate-tm" in focus.stderr  # no TM was registered


def test_a_few_saturated_pixels_only_warn():
    from labpnn.faults import CameraSaturated
    from labpnn.procedures.calibration.optical_common import check_saturation

    class Procedure:
        class log:
            warnings = []
            warning = staticmethod(lambda *args: Procedure.log.warnings.append(args[0] % args[1:]))

    frames = np.zeros((4, 50, 50))
    frames[0, :2, :2] = 4095  # 4 of 10000 values: a bright speckle grain
    assert check_saturation(Procedure, frames, 4095, 1e-5, "here") == 4e-4
    assert Procedure.log.warnings == [
        "0.04% of the pixel values at full scale here (exposure 1e-05 s)"
    ]
    frames[:, :10] = 4095  # 20%
    with pytest.raises(CameraSaturated, match=r"20.0% .* here, exposure_s=1e-05 s"):
        check_saturation(Procedure, frames, 4095, 1e-5, "here")


def test_validate_focus_with_auto_recalibrate_measures_the_missing_tm_first(labpnn, lab_dirs):
    res = labpnn(
        "run", "validate-focus", "--station", "optical-sim",
        "--station-set", "calibration.auto_recalibrate=true",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    files = sorted(p.name for p in lab_dirs[0].rglob("*.h5"))
    assert len(files) == 2 and "_then-calibrate-tm_" in files[1], files
    again = labpnn("run", "validate-focus", "--station", "optical-sim")  # the TM is registered
    # each focus run says which TM it focused with: the run that measured it, and whether
    # it was still valid
    calibration = next(p for p in lab_dirs[0].rglob("*_then-calibrate-tm_*.h5"))
    tm_run = json.loads(labpnn("show", str(calibration), "--json").stdout)
    used = show(labpnn, again)["calibrations_used"]
    assert list(used) == ["tm"]
    assert used["tm"]["run_id"] == tm_run["run_id"] and used["tm"]["valid_when_used"] is True
    assert used["tm"]["run_file"] == str(calibration.resolve())
    text = labpnn("show", again.stdout.strip().splitlines()[-1]).stdout
    assert f"uses tm calibration #{used['tm']['registry_id']} of " in text and "(valid" in text


def test_a_tm_that_predicts_poorly_is_registered_with_a_warning(labpnn, lab_dirs):
    res = labpnn(
        "run", "calibrate-tm", "--station", "optical-sim", "--set", "n_modes=64",
        "--station-set", "bench.simulation.drift_per_s=0.05",  # the fibre moves during it
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "the TM predicts held-out speckle with Pearson" in res.stderr
