"""Training runs through the real CLI, in subprocesses, on the simulated acoustic bench."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from tests.conftest import labpnn_cmd
from tests.training.conftest import VOWELS_CSV, checkpoint_meta, results, run_path, summary

SMALL = ["--set", "standardise_samples=64", "--no-progress"]
VOWELS = ["--set", f"dataset_path={VOWELS_CSV}"] if VOWELS_CSV.is_file() else []
SUMMARY_KEYS = {
    "test_accuracy", "best_test_accuracy", "train_accuracy", "queries", "hardware_s",
    "digital_flops",
}  # fmt: skip


def _run_files(data_dir: Path) -> list[Path]:
    return sorted(Path(data_dir).rglob("*.h5"))


def test_a_killed_phyll_run_resumes_to_the_same_final_metrics(labpnn, lab_dirs, direct_station):
    """SIGKILL after the first checkpoint, `labpnn resume`: final metrics equal an uninterrupted run.

    With re-centring on, so the running centre of the bench's outputs is checkpointed too.
    """
    station = direct_station("acoustic")
    args = ["run", "train-phyll", "--station", station, *VOWELS, *SMALL,
            "--set", "epochs=6", "--set", "eval_every=2", "--set", "checkpoint_every=2",
            "--set", "train_eval_samples=30", "--set", "seed=3", "--set", "recentre=true"]  # fmt: skip
    reference = labpnn(*args)
    assert reference.returncode == 0, reference.stderr
    expected = summary(run_path(reference))

    proc = subprocess.Popen(labpnn_cmd(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline, victim = time.time() + 300, None
    while time.time() < deadline and victim is None:
        for path in _run_files(lab_dirs[0]):
            meta = (
                checkpoint_meta(str(path)) if path.name != Path(run_path(reference)).name else None
            )
            if meta and meta["epoch"] >= 2:
                proc.send_signal(signal.SIGKILL)
                victim = path
                assert "re-centred" in str(meta["trainer"]["config"]["layers"])
                break
        time.sleep(0.02)
    proc.wait(timeout=30)
    assert victim is not None, "the run never wrote its first checkpoint"
    with h5py.File(victim, "r", libver="latest", swmr=True) as f:
        assert f.attrs["status"] == "running", "the run finished before it could be killed"
        keys = list(f["checkpoints/latest"])
    # the checkpoint holds the models, the optimisers, the generators and the simulated world
    assert any(k.startswith("state.stateful.digital") for k in keys)
    assert any(k.startswith("state.stateful.optimizer.0.state") for k in keys)
    assert any(k.startswith("state.generators.train") for k in keys)
    assert any(k.startswith("state.physical.0.bench") for k in keys)
    assert any(k.startswith("state.physical.0.mean") for k in keys)

    resumed = labpnn("resume", str(victim), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    got = summary(run_path(resumed))
    for key in SUMMARY_KEYS | {"eval_queries", "skipped_batches", "epochs"}:
        assert got[key] == pytest.approx(expected[key], rel=1e-6, abs=1e-6), key
    # the resumed file holds every epoch, and they match the uninterrupted run's
    ref_cols, new_cols = results(run_path(reference)), results(run_path(resumed))
    np.testing.assert_allclose(new_cols["epoch"], ref_cols["epoch"])
    for column in ("test_accuracy", "loss_layer1", "loss_layer2", "queries", "digital_flops"):
        np.testing.assert_allclose(new_cols[column], ref_cols[column], rtol=1e-6, atol=1e-6)


def test_a_missing_vowel_csv_is_bad_input_that_says_what_to_do(labpnn, lab_dirs, tmp_path):
    missing = tmp_path / "nowhere" / "vowels.csv"
    res = labpnn("run", "train-phyll", "--set", f"dataset_path={missing}", "--no-progress")
    assert res.returncode == 2, res.stderr
    assert str(missing) in res.stderr and "synthetic" in res.stderr
    assert "Traceback" not in res.stderr
    assert _run_files(lab_dirs[0]) == []


def test_dry_run_counts_training_and_label_trying_evaluation(labpnn, lab_dirs):
    res = labpnn("run", "train-phyll", "--station", "acoustic-sim", "--set", "epochs=10",
                 "--set", "eval_every=5", "--dry-run")  # fmt: skip
    assert res.returncode == 0, res.stderr
    # 256 probes + 10 epochs x 2 x 206 x 2 layers + 2 evaluations x 258 rows x 7 labels x 2 layers
    assert f"about {256 + 10 * 824 + 2 * 258 * 7 * 2} hardware queries" in res.stdout
    assert _run_files(lab_dirs[0]) == []


def test_nan_frames_skip_and_count_batches_and_a_dead_bench_fails_the_run(labpnn, direct_station):
    # Probes (64) and two full-batch epochs (2 x 412 x 2 layers) measure fine, then every frame is NaN.
    station = direct_station("acoustic", faults={"nan_after_calls": 64 + 2 * 824})
    res = labpnn("run", "train-phyll", "--station", station, *VOWELS, *SMALL,
                 "--set", "epochs=4", "--set", "eval_every=4")  # fmt: skip
    # two epochs without a usable batch (and an evaluation without a finite row) fail the run
    assert res.returncode == 1, res.stderr
    assert "no finite measurements in epoch 4" in res.stderr
    path = run_path(res)
    got, cols = summary(path), results(path)
    assert got["skipped_batches"] == 2 and got["status"] == "failed" and got["epochs"] == 4
    np.testing.assert_array_equal(cols["skipped_batches"], [0, 0, 1, 2])
    assert np.isfinite(cols["loss"][:2]).all() and np.isnan(cols["loss"][2:]).all()
    # NaN frames are 'unknown' predictions, never a class: no accuracy, every row counted bad
    assert np.isnan(cols["test_accuracy"]).all() and "test_accuracy" not in got
    assert cols["bad_eval_rows"][-1] == 52 + 206
    assert "every batch was skipped" in res.stderr
    assert checkpoint_meta(path)["epoch"] == 2  # the last epoch with data


def test_a_diverging_loss_fails_the_run_and_keeps_the_last_good_checkpoint(labpnn, direct_station):
    station = direct_station("acoustic")
    res = labpnn("run", "train-phyll", "--station", station, *VOWELS, *SMALL,
                 "--set", "epochs=3", "--set", "divergence_bound=0.5")  # fmt: skip
    assert res.returncode == 1, res.stderr
    assert "diverged" in res.stderr
    path = run_path(res)
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "failed"
    assert checkpoint_meta(path)["epoch"] == 0  # the last good state: before the first update


def test_fit_twin_registers_a_twin_that_pat_and_insilico_use_and_count(labpnn, direct_station):
    station = direct_station("acoustic")
    twin = labpnn("run", "fit-twin", "--station", station, *SMALL,
                  "--set", "twin_samples=300", "--set", "twin_epochs=5")  # fmt: skip
    assert twin.returncode == 0, twin.stderr
    twin_summary = summary(run_path(twin))
    assert twin_summary["queries"] == 364 and 0 <= twin_summary["twin_validation_nrmse"]
    # a twin that explains little of the bench says so, and says what to do
    poor = twin_summary["twin_validation_nrmse"] > 0.5
    assert ("explains little of the acoustic bench" in twin.stderr) == poor
    with h5py.File(run_path(twin), "r") as f:
        assert "calibration/twin.mlp.0.weight" in f and "calibration/standardise.mean" in f

    for procedure, skip in (("train-pat", "off"), ("train-insilico", "on")):
        res = labpnn("run", procedure, "--station", station, *VOWELS, *SMALL,
                     "--set", "twin=registry", "--set", "epochs=2", "--set", f"skip={skip}")  # fmt: skip
        assert res.returncode == 0, res.stderr
        with h5py.File(run_path(res), "r") as f:  # the skip widens the map after each layer
            readout = f["checkpoints/latest/state.stateful.network.readout.weight"].shape
        assert readout == (7, 20 + (20 if skip == "on" else 0))
        got = summary(run_path(res))
        assert SUMMARY_KEYS <= set(got)
        assert got["twin_queries"] == 364  # the twin's data count once, though two layers use it
        assert "using registered twin" in res.stderr
        # the file names the twin it used and how that twin was fitted, not this run's twin_*
        with h5py.File(run_path(res), "r") as f:
            used = dict(f["calibrations_used/twin"].attrs)
            effective = json.loads(f.attrs["effective_parameters"])
        assert used["run_file"] == str(Path(run_path(twin)).resolve())
        assert (effective["twin_samples"], effective["twin_epochs"]) == (300, 5)
    # in-silico logs what its twin believes next to what the bench measures
    assert np.isfinite(results(run_path(res))["twin_test_accuracy"][-1])


def test_a_microwave_twin_is_fitted_on_the_metasurface_code_and_pat_resumes_with_it(
    labpnn, direct_station
):
    station = direct_station("microwave")
    twin = labpnn("run", "fit-twin", "--station", station, *SMALL,
                  "--set", "twin_samples=200", "--set", "twin_epochs=3")  # fmt: skip
    assert twin.returncode == 0, twin.stderr
    with h5py.File(run_path(twin), "r") as f:
        described = json.loads(f["calibration"].attrs["twin"])
        first = f["calibration/twin.mlp.0.weight"].shape
    # 20 features written as 2 bits each: the twin reads the 40 bits, not the 20 inputs
    assert described["input_code"] == [[0, 0], [1, 0], [0, 1], [1, 1]] and first[1] == 40

    res = labpnn("run", "train-pat", "--station", station, *VOWELS, *SMALL,
                 "--set", "twin=registry", "--set", "epochs=1", "--set", "checkpoint_every=1")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "using registered twin" in res.stderr
    # the checkpoint rebuilds the coded twin: a resumed run carries on with it
    more = labpnn("resume", run_path(res), "--set", "epochs=2", "--no-progress")
    assert more.returncode == 0, more.stderr
    assert summary(run_path(more))["epochs"] == 2


def test_pat_without_a_registered_twin_is_bad_input_when_one_is_required(labpnn, lab_dirs):
    res = labpnn("run", "train-pat", "--set", "twin=registry", "--no-progress")
    assert res.returncode == 2 and "fit-twin" in res.stderr
    assert _run_files(lab_dirs[0]) == []


def test_forward_forward_is_a_run_too_and_the_report_plots_it(labpnn, tmp_path, lab_dirs):
    from labpnn.station import Station, StationConfig, hold_locks

    # Digital only: it runs while another run holds the station's instruments, and
    # touches none of them.
    acoustic = Station(StationConfig.load("acoustic-sim"))
    with hold_locks(acoustic.lock_paths(), 0, "another run"):
        res = labpnn("run", "train-ff", "--set", "dataset=digits", "--set", "hidden=64",
                     "--set", "epochs=2", "--no-progress")  # fmt: skip
    assert res.returncode == 0, res.stderr
    with h5py.File(run_path(res), "r") as f:
        assert "safe_state" not in f or not dict(f["safe_state"].attrs).get("audio")
        assert json.loads(f.attrs["identities"]) == {}
        assert f.attrs["simulated"]  # it touched nothing, but its station is the simulated one
    path = run_path(res)
    got = summary(path)
    assert SUMMARY_KEYS <= set(got) and got["queries"] == 0 and got["digital_flops"] > 0
    with h5py.File(path, "r") as f:
        assert '"source": "sklearn-digits"' in f.attrs["dataset"]
    png = tmp_path / "ff.png"
    assert labpnn("report", path, "-o", str(png)).returncode == 0
    assert png.stat().st_size > 10_000


def test_a_pat_run_resumed_from_its_checkpoint_continues_like_an_uninterrupted_one(
    labpnn, direct_station
):
    """Resume rebuilds the twin from the checkpoint (no refit) and extends training exactly."""
    station = direct_station("acoustic")
    common = ["--station", station, *VOWELS, *SMALL, "--set", "twin=fit",
              "--set", "twin_samples=300", "--set", "twin_epochs=5", "--set", "eval_every=1",
              "--set", "seed=1"]  # fmt: skip
    straight = labpnn("run", "train-pat", *common, "--set", "epochs=4")
    assert straight.returncode == 0, straight.stderr
    first = labpnn("run", "train-pat", *common, "--set", "epochs=2")
    assert first.returncode == 0, first.stderr
    resumed = labpnn("resume", run_path(first), "--set", "epochs=4", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert "fitting a twin" not in resumed.stderr
    expected, got = summary(run_path(straight)), summary(run_path(resumed))
    for key in SUMMARY_KEYS | {"twin_queries", "eval_queries"}:
        assert got[key] == pytest.approx(expected[key], rel=1e-6, abs=1e-6), key


@pytest.mark.parametrize(
    "procedure, name",
    [("train-ff", "hidden"), ("fit-twin", "twin_hidden"), ("train-pat", "twin_hidden"),
     ("train-insilico", "twin_hidden")],
)  # fmt: skip
def test_bad_layer_widths_are_refused_by_the_preflight(procedure, name):
    """The one preflight of dry runs, queue and schedule entries refuses them, naming them."""
    from labpnn.errors import BadInput
    from labpnn.runner import RunRequest, build_procedure, preflight

    built, station = build_procedure(RunRequest(procedure, params={name: "abc"}))
    with pytest.raises(BadInput, match=rf"^{name}='abc': give layer widths separated by commas"):
        preflight(built, station)
    good, _ = build_procedure(RunRequest(procedure, params={name: "16,8"}))
    preflight(good, station)


def test_a_dry_run_with_bad_twin_widths_exits_2(labpnn, lab_dirs):
    res = labpnn("run", "train-pat", "--set", "twin_hidden=abc", "--dry-run")
    assert res.returncode == 2, res.stderr
    assert "twin_hidden='abc'" in res.stderr and "Traceback" not in res.stderr


def test_a_digital_only_dry_run_estimates_no_hardware(labpnn, lab_dirs):
    res = labpnn("run", "train-ff", "--set", "epochs=3", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "about 0 hardware queries, about 0.0 s" in res.stdout


@pytest.mark.parametrize("flux, saturates", [(2e7, True), (1e5, False)])
def test_saturated_camera_frames_are_warned_of_and_counted(labpnn, direct_station, flux, saturates):
    """Training records no frames, so clipped speckle would go unseen without this."""
    station = direct_station("optical", light={"flux_e_per_s": flux})
    small = ["bench.layout.macropixels=[4,5]", "bench.layout.camera_roi=[0,0,16,16]"]
    res = labpnn("run", "train-phyll", "--station", station, *VOWELS,
                 *[a for s in small for a in ("--station-set", s)],
                 "--set", "epochs=1", "--set", "standardise_samples=16", "--no-progress")  # fmt: skip
    assert res.returncode == 0, res.stderr
    got = summary(run_path(res))
    assert (got["saturated_frames"] > 0) == saturates, got
    assert ("pixels at full scale" in res.stderr) == saturates, res.stderr
