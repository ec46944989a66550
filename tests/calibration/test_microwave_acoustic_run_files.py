"""VNA, metasurface and audio calibration files explain themselves to plain h5py."""

import json

import h5py
import numpy as np
import pytest

from labpnn.runner import RunRequest, execute


def run(procedure: str, station: str, **params):
    outcome = execute(RunRequest(procedure, station=station, show_progress=False, params=params))
    assert outcome.status == "completed", outcome.error
    return h5py.File(outcome.path, "r")


def summary_is_described(f) -> None:
    units, text = f["summary/units"].attrs, f["summary/description"].attrs
    for key in f["summary"].attrs:
        assert key in units and text[key], f"/summary/{key} has no unit or description"


@pytest.mark.timeout(120)
def test_calibrate_vna_names_the_s_parameter_of_each_column_and_the_frequency_axis(monkeypatch):
    from labpnn.drivers.vna import KeysightENA

    sweeps = []
    original = KeysightENA.sweep

    def keep(self):
        sweeps.append(original(self))
        return sweeps[-1]

    monkeypatch.setattr(KeysightENA, "sweep", keep)
    with run("calibrate-vna", "microwave-sim", method="solt") as f:
        corrected = f["traces/corrected"]
        assert corrected.shape == (1, 201, 4)
        columns = json.loads(corrected.attrs["columns"])
        device = sweeps[
            -1
        ].s  # the corrected sweep, as scikit-rf holds it: s[f, i, j] = S(i+1)(j+1)
        assert not np.allclose(device[:, 1, 0], device[:, 0, 1])  # S21 and S12 tell apart
        for name in ("S11", "S21", "S12", "S22"):
            i, j = int(name[1]) - 1, int(name[2]) - 1
            np.testing.assert_array_equal(corrected[0, :, columns.index(name)], device[:, i, j])
        x = f["traces/corrected_x"]
        assert x.attrs["unit"] == "Hz"
        np.testing.assert_allclose(x[()], f["calibration/error_terms/frequency_hz"][()])
        assert f["calibration/error_terms/frequency_hz"].attrs["unit"] == "Hz"
        load = f["calibration/standards/load"]
        assert "raw measured" in load.attrs["description"]
        # raw indeed: an ideal load reflects nothing, the hidden error boxes make it reflect
        assert np.abs(load[:, 0, 0]).max() > 0.01
        summary_is_described(f)


@pytest.mark.timeout(120)
def test_map_metasurface_spreads_say_their_unit_and_reproduce_the_summary():
    with run("map-metasurface", "microwave-sim", n_configs=3, n_repeats=2) as f:
        between, within = f["calibration/between_configs"], f["calibration/within_repeats"]
        for spread in (between, within):
            assert spread.attrs["unit"] == "1 (linear |S21|)" and spread.attrs["description"]
        snr = between[()] / np.maximum(within[()], 1e-15)
        assert f["summary"].attrs["snr_median"] == pytest.approx(np.median(snr))
        # the definitions in the descriptions, recomputed from the raw sweeps
        magnitude = np.abs(f["traces/s21"][()]).reshape(3, 2, -1)
        np.testing.assert_allclose(between[()], magnitude.mean(axis=1).std(axis=0))
        np.testing.assert_allclose(within[()], magnitude.std(axis=1).mean(axis=0))
        summary_is_described(f)


@pytest.mark.timeout(120)
def test_calibrate_audio_impulse_responses_have_a_time_axis_and_units():
    with run("calibrate-audio", "acoustic-sim", n_calls=2, n_average=1) as f:
        traces = f["traces/impulse_response"]
        rate = traces.attrs["samplerate"]
        x = f["traces/impulse_response_x"]
        assert x.attrs["unit"] == "s" and len(x) == traces.shape[1]
        np.testing.assert_allclose(np.diff(x[()]), 1 / rate, rtol=1e-9)
        # the logged acoustic delay is where the response peaks on that axis
        delay = f["results/acoustic_delay_samples"][0]
        assert x[int(np.argmax(np.abs(traces[0])))] == pytest.approx(delay / rate)
        for name in ("traces/impulse_response", "calibration/impulse_response",
                     "calibration/transfer_std", "calibration/transfer"):  # fmt: skip
            assert f[name].attrs["unit"] == "FS/FS" and f[name].attrs["description"], name
        summary_is_described(f)
