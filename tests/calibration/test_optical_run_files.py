"""The optical calibration files explain themselves to plain h5py: units, clocks, exposures."""

import json

import h5py
import numpy as np
import pytest

from labpnn.runner import RunRequest, execute

SMALL = {
    "calibrate-camera": {"n_patterns": 4},
    "calibrate-tm": {"n_modes": 16, "n_holdout": 2},
    "validate-focus": {"n_targets": 2, "n_random": 8},
}


def run(procedure: str):
    outcome = execute(
        RunRequest(procedure, station="optical-sim", show_progress=False, params=SMALL[procedure])
    )
    assert outcome.status == "completed", outcome.error
    return outcome


@pytest.fixture(scope="module")
def optical_files(tmp_path_factory):
    """One small camera calibration, TM and focus, run in this process on the simulator."""
    root = tmp_path_factory.mktemp("optical")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LABPNN_DATA_DIR", str(root / "data"))
        mp.setenv("LABPNN_STATE_DIR", str(root / "state"))
        return {name: run(name).path for name in SMALL}


def summary_is_described(f) -> None:
    units, text = f["summary/units"].attrs, f["summary/description"].attrs
    for key in f["summary"].attrs:
        assert key in units and text[key], f"/summary/{key} has no unit or description"


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "procedure, stream, clock",
    [
        ("calibrate-camera", "camera", "unix"),
        ("calibrate-tm", "camera", "bench"),  # exposure starts on the simulated world's clock
        ("validate-focus", "focus", "unix"),
    ],
)
def test_camera_frames_carry_unit_roi_clock_and_per_frame_exposure(
    optical_files, procedure, stream, clock
):
    with h5py.File(optical_files[procedure], "r") as f:
        frames = f[f"frames/{stream}"]
        assert frames.attrs["unit"] == "ADU (camera counts)"
        assert "not pooled" in frames.attrs["description"]
        assert frames.attrs["full_scale_adu"] == 4095
        assert json.loads(frames.attrs["roi"]) == [0, 0, *frames.shape[2:0:-1]]  # x, y, w, h
        t = f[f"frames/{stream}_t"]
        assert (t.attrs["unit"], t.attrs["clock"]) == ("s", clock)
        exposure = f[f"frames/{stream}_exposure_s"][()]
        assert exposure.shape == (len(frames),) and np.all(exposure > 0)
        assert f[f"frames/{stream}_exposure_s"].attrs["unit"] == "s"
        if clock == "bench":  # simulated seconds since the world started, not 1970
            assert np.all(np.diff(t[()]) > 0) and t[-1] < 1e5
            assert exposure[0] == pytest.approx(f["summary"].attrs["exposure_s"])
        else:
            assert t[0] > 1.6e9
        summary_is_described(f)


def test_focus_frames_become_physical_only_with_their_own_exposures(optical_files):
    """Auto-exposure keeps every focus near the same peak ADU; divided by each frame's own
    exposure, the 16-mode focus is several times brighter than the 4-mode one."""
    with h5py.File(optical_files["validate-focus"], "r") as f:
        peak_adu = f["frames/focus"][()].max(axis=(1, 2)).astype(float)
        exposure = f["frames/focus_exposure_s"][()]
        modes = f["results/n_modes"][()]
    assert len(np.unique(exposure)) > 1, "the exposure changed during the run"
    per_s = peak_adu / exposure
    assert per_s[modes == 16].mean() > 2 * per_s[modes == 4].mean()
    assert peak_adu[modes == 16].mean() < 2 * peak_adu[modes == 4].mean()


def test_tm_groups_say_what_they_index(optical_files):
    with h5py.File(optical_files["calibrate-tm"], "r") as f:
        groups = f["calibration/groups"]
        assert groups.attrs["unit"] == "mode index"
        assert "column of calibration/tm" in groups.attrs["description"]
        assert groups[()].max() == f["calibration/tm"].shape[1] - 1


@pytest.mark.timeout(120)
def test_validate_focus_progress_ends_at_100_percent(monkeypatch):
    from labpnn import runner

    seen: list[float] = []
    original = runner._Progress.__call__

    def record(self, done, total, info):
        seen.append(done / total)
        original(self, done, total, info)

    monkeypatch.setattr(runner._Progress, "__call__", record)
    run("calibrate-tm")
    seen.clear()
    run("validate-focus")
    assert seen[-1] == pytest.approx(1.0)
    assert seen == sorted(seen)  # never goes back
