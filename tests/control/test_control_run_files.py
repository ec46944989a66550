"""A control run's frame streams say what they hold, for a reader with plain h5py."""

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from labpnn.runner import RunRequest, execute

HERE = Path(__file__).parent


def project_with_a_16_mode_tm(tmp_path) -> str:
    """calibrate-tm (16 modes) then control-tm (3 targets) on the small station: the file."""
    station = str(shutil.copy(HERE / "small-control.yaml", tmp_path / "small-control.yaml"))
    for procedure, params in (("calibrate-tm", {"n_modes": 16}), ("control-tm", {"n_targets": 3})):
        outcome = execute(
            RunRequest(procedure, station=station, show_progress=False, params=params)
        )
        assert outcome.status == "completed", outcome.error
    return outcome.path


@pytest.mark.timeout(120)
def test_control_tm_frames_say_codes_fraction_of_full_scale_roi_and_pooling(tmp_path):
    with h5py.File(project_with_a_16_mode_tm(tmp_path), "r") as f:
        slm, camera = f["frames/slm"], f["frames/camera"]
        assert slm.dtype == np.uint8 and slm.attrs["unit"] == "phase code"
        assert (
            "2π/256" in slm.attrs["description"]
            and "16 x 16 macropixels" in (slm.attrs["description"])
        )
        # the patterns shown are the codes the run kept for its targets
        np.testing.assert_array_equal(slm[-3:], f["control/patterns"][()])
        assert camera.attrs["unit"] == "fraction of full scale"
        text = camera.attrs["description"]
        assert "[0, 0, 8, 8]" in text and "kernel 1, stride 1" in text and "4095 ADU" in text
        assert 0 <= camera[()].min() and camera[()].max() <= 1
        assert len(camera) == len(slm)
        exposure = f["frames/camera_exposure_s"][()]
        np.testing.assert_allclose(exposure, f.attrs["exposure_used_s"])
        assert f["frames/projections"].attrs["unit"] == "fraction of full scale"


@pytest.mark.timeout(120)
def test_control_tm_states_the_dof_its_tm_controls_not_the_slms(tmp_path):
    """A 16-mode TM drives 16x16 macropixels in 16 blocks: 0.25 DOF per target pixel, not 4."""
    with h5py.File(project_with_a_16_mode_tm(tmp_path), "r") as f:
        assert f.attrs["slm_dof"] == 256 and f.attrs["controlled_dof"] == 16
        assert f.attrs["dof_per_target_pixel"] == 16 / 64
        warnings = [m.decode() for _t, level, m in f["log"][()] if level == b"WARNING"]
        assert any("0.25 controlled SLM degrees of freedom" in m and "n_modes=0" in m
                   for m in warnings), warnings  # fmt: skip


@pytest.mark.timeout(120)
def test_every_control_result_column_summary_key_and_array_has_units_and_a_description(
    tmp_path,
):
    with h5py.File(project_with_a_16_mode_tm(tmp_path), "r") as f:
        for name, column in f["results"].items():
            if not name.endswith("_t"):
                assert column.attrs.get("units") and column.attrs.get("description"), name
        units, about = f["summary/units"].attrs, f["summary/description"].attrs
        for key in f["summary"].attrs:
            assert units.get(key) and about.get(key), key
        assert f["summary/units"].attrs["fidelity"] == "1 (Pearson r)"
        for name in ("targets", "target_names", "patterns"):
            assert f["control"][name].attrs.get("description"), name
        assert f["control/patterns"].attrs["unit"] == "phase code"
