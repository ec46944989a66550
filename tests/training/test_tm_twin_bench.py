"""The physics twin of the simulated optical bench, from its measured TM: it predicts the bench,
and a model trained on it alone works on the bench (what an MLP twin of this bench cannot do)."""

import json

import numpy as np
import pytest
import torch

from labpnn.bench import make_bench
from labpnn.datasets import digits
from labpnn.errors import BadInput
from labpnn.learning import InSilicoTrainer, TransmissionMatrixTwin, fit_output_map
from labpnn.learning.twin import nrmse
from labpnn.procedures.calibration.tm import measure_tm
from labpnn.procedures.training.layers import LabLayer
from labpnn.procedures.training.task import fit_task
from labpnn.procedures.training.twin import transmission_matrix_twin
from labpnn.station import StationConfig

STATIC = [
    "bench.simulation.transport=direct",
    "bench.simulation.drift_per_s=0",
    "bench.simulation.global_phase_drift_per_s=0",
]


def _sampler(n_in):
    return lambda n, generator: torch.rand(n, n_in, generator=generator)


@pytest.fixture(scope="module")
def bench_and_tm():
    station = StationConfig.load("optical-sim", STATIC).connect()
    try:
        layer = LabLayer(make_bench(station), name="optical")
        layer.standardise(128, 0.0, 1.0, torch.Generator().manual_seed(1))
        yield layer, measure_tm(layer.layer)
    finally:
        station.close()


def test_the_tm_twin_predicts_the_bench_and_a_scrambled_tm_does_not(bench_and_tm):
    layer, arrays = bench_and_tm
    twin = transmission_matrix_twin(layer.layer, arrays)
    fit_output_map(twin, layer, 200, _sampler(layer.n_in), seed=0)
    # measured 0.098 (2026-12-05); repeated measurements of one input differ by 0.030
    assert twin.report["validation_nrmse"] < 0.3
    assert twin.report["queries"] == 200

    scrambled = dict(arrays)
    order = np.random.default_rng(0).permutation(arrays["tm"].shape[1])
    scrambled["tm"] = arrays["tm"][:, order]  # every macropixel given another's column
    wrong = transmission_matrix_twin(layer.layer, scrambled)
    fit_output_map(wrong, layer, 200, _sampler(layer.n_in), seed=0)
    assert wrong.report["validation_nrmse"] > 0.8


def test_a_twin_of_the_simulators_true_tm_reproduces_the_bench():
    """The twin's physics against the simulator's own: no output map, no noise, a linear SLM."""
    quiet = [*STATIC, "bench.simulation.noise=off", "bench.simulation.lut_nonlinearity=0"]
    station = StationConfig.load("optical-sim", quiet).connect()
    try:
        bench = make_bench(station)
        bench.camera.exposure_s /= 4  # no pixel at full scale
        truth = station.world.ground_truth()
        assert tuple(truth["pixel_roi"]) == tuple(bench.camera.roi)
        adu = truth["adu_per_intensity"]
        twin = TransmissionMatrixTwin(
            torch.from_numpy(truth["tm"] * adu),
            torch.from_numpy(np.abs(truth["reference_field"]) * np.sqrt(adu)),
            (bench.camera.roi[3], bench.camera.roi[2]), pool=bench.pool_spec,
            detect=bench.detect, full_scale=float(bench.full_scale),
        )  # fmt: skip
        x = torch.rand(64, bench.n_in, generator=torch.Generator().manual_seed(4))
        measured = torch.as_tensor(bench.measure(x.numpy()), dtype=torch.float32)
        assert float(measured.max()) < 1.0
        assert nrmse(twin.physical, x, measured) < 0.02
    finally:
        station.close()


def test_a_tm_of_grouped_macropixels_is_refused(bench_and_tm):
    layer, _ = bench_and_tm
    with pytest.raises(BadInput, match="n_modes=0"):
        transmission_matrix_twin(layer.layer, measure_tm(layer.layer, n_modes=64))


def test_a_changed_exposure_is_rescaled_and_a_tm_of_another_roi_is_refused(bench_and_tm):
    layer, arrays = bench_and_tm
    camera = layer.layer.camera
    exposure = camera.exposure_s
    try:
        camera.exposure_s = exposure / 2
        twin = transmission_matrix_twin(layer.layer, arrays)
        # the raw prediction (no fitted output map) follows the halved light
        x = torch.rand(64, layer.n_in, generator=torch.Generator().manual_seed(3))
        measured = layer.layer(x)
        predicted = twin.physical(x)
        assert abs(float(predicted.mean() / measured.mean()) - 1) < 0.05
    finally:
        camera.exposure_s = exposure
    moved = {**arrays, "roi": np.array([8, 0, 64, 64])}
    with pytest.raises(BadInput, match="calibrate-tm again"):
        transmission_matrix_twin(layer.layer, moved)


def test_a_model_trained_on_the_tm_twin_alone_classifies_on_the_bench(bench_and_tm):
    layer, arrays = bench_and_tm
    twin = transmission_matrix_twin(layer.layer, arrays)
    fit_output_map(twin, layer, 200, _sampler(layer.n_in), seed=0)
    ds, _ = fit_task(digits(seed=0), layer.n_in, 0.5)
    model = InSilicoTrainer([layer], [twin], ds.n_classes, lr=1e-3, batch_size=32,
                            standardise=False, seed=0)  # fmt: skip
    queries = layer.queries
    for _ in range(2):
        model.step_epoch(ds, evaluate=False)
    assert layer.queries == queries  # trained on the twin alone
    # measured 0.950 (2026-12-05); chance is 0.1
    assert model.evaluate(ds.x_test, ds.y_test) > 0.8


def test_fit_twin_on_an_optical_station_builds_the_tm_twin_that_insilico_then_uses(
    labpnn, direct_station
):
    import h5py

    from tests.training.conftest import run_path, summary

    station = direct_station("optical", drift_per_s=0, global_phase_drift_per_s=0)
    small = ["--set", "standardise_samples=64", "--no-progress"]
    # the default twin of an optical bench is the TM's physics: without a TM it says what to do
    missing = labpnn("run", "fit-twin", "--station", station, *small)
    assert missing.returncode == 2 and "calibrate-tm" in missing.stderr

    calibrated = labpnn("run", "calibrate-tm", "--station", station, "--no-progress")
    assert calibrated.returncode == 0, calibrated.stderr
    tm_queries = summary(run_path(calibrated))["queries"]
    twin = labpnn("run", "fit-twin", "--station", station, *small, "--set", "tm_pairs=200")
    assert twin.returncode == 0, twin.stderr
    got = summary(run_path(twin))
    assert got["twin_validation_nrmse"] < 0.3  # an MLP: 0.72 from 20 000 pairs
    assert got["queries"] == tm_queries + 64 + 200  # the TM's frames, the probes, the pairs
    with h5py.File(run_path(twin), "r") as f:
        assert json.loads(f["calibration"].attrs["twin"])["model"] == "tm"
        assert "calibrations_used/tm" in f

    res = labpnn("run", "train-insilico", "--station", station, "--set", "dataset=digits",
                 *small, "--set", "twin=registry", "--set", "epochs=2",
                 "--set", "checkpoint_every=1")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "using registered twin" in res.stderr
    trained = summary(run_path(res))
    assert trained["test_accuracy"] > 0.5  # chance is 0.1
    with h5py.File(run_path(res), "r") as f:  # how the reused twin was made, not this run's
        effective = json.loads(f.attrs["effective_parameters"])
    assert effective["twin_model"] == "tm" and effective["tm_pairs"] == 200
    assert "twin_samples" not in effective
    # a resume rebuilds the TM twin from the checkpoint, and goes on as well as before
    more = labpnn("resume", run_path(res), "--set", "epochs=3", "--no-progress")
    assert more.returncode == 0, more.stderr
    resumed = summary(run_path(more))
    assert resumed["epochs"] == 3 and resumed["test_accuracy"] > 0.5

    # a TM measured again makes the twin stale: it is not reused
    again = labpnn("run", "calibrate-tm", "--station", station, "--no-progress")
    assert again.returncode == 0, again.stderr
    stale = labpnn("run", "train-insilico", "--station", station, "--set", "dataset=digits",
                   *small, "--set", "twin=registry", "--set", "epochs=1")  # fmt: skip
    assert stale.returncode == 1 and "no registered tm twin" in stale.stderr  # the run fails


def test_a_tm_twin_of_a_bench_without_an_slm_is_refused(labpnn):
    res = labpnn("run", "fit-twin", "--set", "twin_model=tm", "--no-progress")  # acoustic-sim
    assert res.returncode == 2 and "twin_model=mlp" in res.stderr


def test_the_dark_level_calibrate_tm_took_off_is_added_back():
    """A camera with a black level: the bench reads it, so the twin must add it back (with a
    camera calibration, calibrate-tm registers it as dark_level and removes it from |s|²)."""
    station = StationConfig.load(
        "optical-sim", [*STATIC, "bench.simulation.noise.black_level_adu=300"]
    ).connect()
    try:
        layer = LabLayer(make_bench(station), name="optical")
        layer.standardise(128, 0.0, 1.0, torch.Generator().manual_seed(1))
        arrays = measure_tm(layer.layer)
        arrays["reference_intensity"] = arrays["reference_intensity"] - 300.0
        scores = {}
        for dark in (300.0, 0.0):
            arrays["dark_level"] = np.full(arrays["reference_intensity"].shape, dark)
            twin = transmission_matrix_twin(layer.layer, arrays)
            fit_output_map(twin, layer, 200, _sampler(layer.n_in), seed=0)
            scores[dark] = twin.report["validation_nrmse"]
        # measured 0.104 with it and 0.168 without (2026-12-05)
        assert scores[300.0] < 0.3 and scores[0.0] > scores[300.0] + 0.03
    finally:
        station.close()
