"""Run control of the training procedures: resume checks, stops, dead benches, reporting.

Runs go through the real CLI in subprocesses on the simulated acoustic bench (direct transport,
small settings); the pieces that need no bench are checked in-process.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from labpnn.errors import BadInput
from labpnn.procedures.training import common
from labpnn.procedures.training.ff import TrainFF
from labpnn.procedures.training.pat import TrainPAT
from labpnn.procedures.training.phyll import TrainPhyLL
from labpnn.storage import open_run
from tests.conftest import labpnn_cmd
from tests.training.conftest import checkpoint_meta, results, run_path, summary

SMALL = ["--set", "standardise_samples=64", "--no-progress"]
# Queries of the PhyLL runs below on the 2-layer acoustic bench, synthetic vowels (206 training
# rows, 52 test rows, 7 classes): the probes, one full-batch epoch (206 positives and 206
# negatives through 2 layers), one scoring of the test rows (52 rows x 7 labels x 2 layers).
PROBES, EPOCH, TEST_EVAL = 64, 824, 728


def _files(data_dir: Path) -> list[Path]:
    return sorted(Path(data_dir).rglob("*.h5"))


def _phyll(station: str, *sets: str) -> list[str]:
    args = ["run", "train-phyll", "--station", station, *SMALL]
    for item in sets:
        args += ["--set", item]
    return args


# -- 1, 5, 10: resume ----------------------------------------------------------------------
def test_resume_refuses_changed_parameters_and_a_finished_run_before_connecting(
    labpnn, lab_dirs, direct_station
):
    station = direct_station("acoustic")
    first = labpnn(*_phyll(station, "epochs=2", "eval_every=1", "train_eval_samples=20"))
    assert first.returncode == 0, first.stderr
    path = run_path(first)
    # --no-progress: one line per evaluated epoch (the first and the last always)
    assert "epoch 1/2: train accuracy" in first.stderr
    assert "epoch 2/2: train accuracy" in first.stderr

    def refused(*sets: str) -> str:
        args = ["resume", path, "--no-progress"]
        for item in sets:
            args += ["--set", item]
        res = labpnn(*args)
        assert res.returncode == 2, res.stderr
        assert "Traceback" not in res.stderr
        assert len(_files(lab_dirs[0])) == 1, "a refused resume must not start a run"
        return res.stderr

    err = refused("lr=0.01", "seed=3", "epochs=4")
    assert "lr (the checkpoint was trained with 0.0005, asked 0.01)" in err
    assert "seed (the checkpoint was trained with 0, asked 3)" in err
    assert "epochs, eval_every, checkpoint_every" in err
    assert "layers (the checkpoint was trained with 2, asked 3)" in refused("layers=3", "epochs=4")
    assert "train_eval_samples" in refused("train_eval_samples=0", "epochs=4")
    assert "epochs >= 2" in refused("epochs=1")
    err = refused()
    assert "completed run (2/2 epochs); nothing to resume" in err and "epochs=N" in err

    # Spelling out the bench's default (lr=0 means 5e-4 here) is no change, and raising epochs
    # continues the completed run.
    more = labpnn("resume", path, "--set", "lr=5e-4", "--set", "epochs=3", "--no-progress")
    assert more.returncode == 0, more.stderr
    new = run_path(more)
    assert summary(new)["epochs"] == 3
    with h5py.File(new, "r") as f:
        assert f.attrs["resumed_from"] == str(Path(path).resolve())
        assert Path(f.attrs["resumed_from"]).is_absolute()
        with h5py.File(path, "r") as old:
            assert f.attrs["resumed_from_run_id"] == old.attrs["run_id"]


def test_resume_uses_the_values_the_run_used_not_todays_defaults(labpnn, lab_dirs):
    """A file from a version with other defaults: "0 = default" must mean what it meant then."""
    import json

    first = labpnn("run", "train-ff", "--set", "hidden=16", "--set", "epochs=2",
                   "--set", "lr=0.03", "--no-progress")  # fmt: skip
    assert first.returncode == 0, first.stderr
    path = run_path(first)
    with h5py.File(path, "r+") as f:  # as an older labpnn, whose defaults these were, wrote it
        raw = json.loads(f.attrs["parameters"])
        raw.update(lr=0.0, epochs=0)
        f.attrs["parameters"] = json.dumps(raw)
    # epochs=0 meant 2 then: a completed run, not one to train on to today's default
    res = labpnn("resume", path, "--no-progress")
    assert res.returncode == 2 and "completed run (2/2 epochs)" in res.stderr, res.stderr
    more = labpnn("resume", path, "--set", "epochs=3", "--no-progress")
    assert more.returncode == 0, more.stderr  # trained on at lr 0.03, as the checkpoint was
    with h5py.File(run_path(more), "r") as f:
        assert json.loads(f.attrs["effective_parameters"])["lr"] == 0.03


# -- 4: a graceful stop checkpoints the last finished epoch ---------------------------------
def test_sigint_checkpoints_the_last_finished_epoch_and_resume_matches_a_straight_run(
    labpnn, lab_dirs, direct_station
):
    station = direct_station("acoustic")
    sets = ["eval_every=1", "checkpoint_every=100", "train_eval_samples=20", "seed=2"]
    proc = subprocess.Popen(
        labpnn_cmd(*_phyll(station, "epochs=60", *sets)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline, sent = time.time() + 240, False
    while time.time() < deadline and not sent and proc.poll() is None:
        for path in _files(lab_dirs[0]):
            try:
                with open_run(path) as f:
                    done = f["results/epoch"].shape[0] if "results/epoch" in f else 0
            except Exception:  # being restructured: next poll
                done = 0
            if done >= 2:
                proc.send_signal(signal.SIGINT)
                sent = True
        time.sleep(0.05)
    out, err = proc.communicate(timeout=120)
    assert sent, "the run never finished two epochs"
    assert proc.returncode == 130, err
    victim = out.strip().splitlines()[-1]
    logged = int(results(victim)["epoch"][-1])
    assert logged >= 2
    # A finished epoch is kept, although checkpoint_every is 100: the last one, unless keeping
    # it in memory cost more than 2 % of the training time (CAPTURE_SHARE) on a loaded machine.
    kept = checkpoint_meta(victim)["epoch"]
    assert 1 <= kept <= logged
    got = summary(victim)
    assert got["epochs"] == logged and got["status"] == "aborted"
    assert f"continues from epoch {kept}" in err and "labpnn resume" in err
    assert err.count("run aborted") == 1

    target = logged + 2
    resumed = labpnn("resume", victim, "--set", f"epochs={target}", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert f"checkpoint at epoch {kept}" in resumed.stderr
    straight = labpnn(*_phyll(station, f"epochs={target}", *sets))
    assert straight.returncode == 0, straight.stderr
    expected, final = summary(run_path(straight)), summary(run_path(resumed))
    for key in ("test_accuracy", "train_accuracy", "best_test_accuracy", "queries",
                "eval_queries", "hardware_s", "digital_flops", "epochs"):  # fmt: skip
        assert final[key] == pytest.approx(expected[key], rel=1e-6, abs=1e-9), key
    ref_cols, new_cols = results(run_path(straight)), results(run_path(resumed))
    for column in ("epoch", "test_accuracy", "loss_layer1", "loss_layer2", "queries"):
        np.testing.assert_allclose(new_cols[column], ref_cols[column], rtol=1e-6, atol=1e-9)


def test_a_lost_device_keeps_the_last_finished_epoch_too(labpnn, direct_station):
    """Not only a stop: an instrument failure between checkpoints loses no finished epoch."""
    # the microphone vanishes during epoch 3 (each epoch: training, then 52 + 20 rows scored)
    per_epoch = EPOCH + TEST_EVAL + 20 * 7 * 2
    station = direct_station(
        "acoustic", faults={"unplug_after_calls": PROBES + 2 * per_epoch + 100}
    )
    res = labpnn(*_phyll(station, "epochs=10", "eval_every=1", "checkpoint_every=100",
                         "train_eval_samples=20"))  # fmt: skip
    assert res.returncode == 1, res.stderr
    path = run_path(res)
    logged = int(results(path)["epoch"][-1])
    assert logged == 2
    assert 1 <= checkpoint_meta(path)["epoch"] <= logged  # not epoch 0
    assert summary(path)["status"] == "failed"
    with h5py.File(path, "r") as f:
        assert f["safe_state"].attrs["all_safe"]


# -- 2, 10, 11: a bench that returns nothing usable -----------------------------------------
def test_partly_skipped_epochs_warn_and_two_dead_epochs_fail_the_run(labpnn, direct_station):
    # Batches of 32 (7 an epoch, 128 queries each over 2 layers): the fourth batch of epoch 1
    # goes bad, and every frame after it.
    station = direct_station("acoustic", faults={"nan_after_calls": PROBES + 3 * 128 + 10})
    res = labpnn(*_phyll(station, "epochs=5", "eval_every=5", "batch_size=32"))
    assert res.returncode == 1, res.stderr
    assert "epoch 1: 4 of 7 batches skipped (57 %" in res.stderr
    assert "epoch 2: every batch was skipped" in res.stderr
    assert "the bench returned no finite measurements in epoch 3" in res.stderr
    assert "check the instrument" in res.stderr
    assert res.stderr.count("run failed") == 1
    assert "BenchGaveNoData" not in res.stderr
    path = run_path(res)
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "failed"
        assert f["safe_state"].attrs["all_safe"]
    # the last epoch that had data (epoch 1) is the checkpoint; nothing was learnt after it
    assert checkpoint_meta(path)["epoch"] == 1
    got = summary(path)
    assert got["status"] == "failed" and got["epochs"] == 3 and got["skipped_batches"] == 18


def test_bad_evaluation_rows_are_counted_and_an_evaluation_without_data_fails(
    labpnn, direct_station
):
    # Epoch 1 trains and scores its test rows, then every frame is NaN: its 20 training rows
    # score NaN, and epochs 2 and 3 have neither training data nor a finite evaluation row.
    station = direct_station("acoustic", faults={"nan_after_calls": PROBES + EPOCH + TEST_EVAL})
    res = labpnn(*_phyll(station, "epochs=6", "eval_every=1", "train_eval_samples=20"))
    assert res.returncode == 1, res.stderr
    assert "epoch 1: 20 of 72 evaluated rows gave no finite measurement" in res.stderr
    assert "no finite measurements in epoch 3: none of the 72 evaluated rows" in res.stderr
    assert "2 epoch(s) in a row without usable data" in res.stderr
    path = run_path(res)
    cols = results(path)
    np.testing.assert_array_equal(cols["bad_eval_rows"], [20, 72, 72])
    assert np.isfinite(cols["test_accuracy"][0]) and cols["train_accuracy"][0] == 0.0
    assert np.isnan(cols["test_accuracy"][1])  # unknown, not 0
    got = summary(path)
    assert got["status"] == "failed" and got["epochs"] == 3
    assert got["test_accuracy"] == pytest.approx(cols["test_accuracy"][0])
    assert got["bad_eval_rows"] == 20
    assert checkpoint_meta(path)["epoch"] == 1


def test_divergence_is_stated_once_and_the_failed_run_has_a_summary(labpnn, direct_station):
    station = direct_station("acoustic")
    res = labpnn(*_phyll(station, "epochs=3", "divergence_bound=0.5"))
    assert res.returncode == 1, res.stderr
    assert res.stderr.count("training diverged") == 1
    assert "stop the run" not in res.stderr  # a statement, not an instruction
    assert "keeps a checkpoint at epoch 0" in res.stderr
    got = summary(run_path(res))
    assert got["status"] == "failed" and got["epochs"] == 0 and "queries" in got


# -- 10: units and descriptions ------------------------------------------------------------
def test_results_columns_and_summary_carry_units_and_descriptions(labpnn):
    res = labpnn("run", "train-ff", "--set", "dataset=digits", "--set", "hidden=16",
                 "--set", "epochs=2", "--set", "eval_every=1", "--no-progress")  # fmt: skip
    assert res.returncode == 0, res.stderr
    with h5py.File(run_path(res), "r") as f:
        for name in f["results"]:
            assert f[f"results/{name}"].attrs["description"], name
            assert "units" in f[f"results/{name}"].attrs, name
        assert f["results/test_accuracy"].attrs["units"] == "fraction 0..1"
        assert "cumulative" in f["results/queries"].attrs["description"]
        assert "simulated time" in f["results/hardware_s"].attrs["description"]
        assert "re-logged" in f["results/wall_s"].attrs["description"]
        units = f["summary/units"].attrs
        assert units["test_accuracy"] == "fraction 0..1" and units["hardware_s"] == "s"
        assert "total" in f["summary/description"].attrs["queries"]
        assert f["summary"].attrs["status"] == "completed"


# -- 3, 9: parameter validation ------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "raw", "message"),
    [
        ("lr", "nan", "finite number in 0..100"),
        ("alpha", "nan", "finite number in 0..1000"),
        ("divergence_bound", "nan", "finite number"),
        ("divergence_bound", "inf", "number in 0..1e+300"),
        ("epochs", "-1", "integer in 0..1000000"),
        ("lr", "1e9", "number in 0..100"),
        ("recentre", "maybe", "true or false"),
        ("skip", "yes", "one of auto, on, off"),
    ],
)
def test_invalid_parameters_say_what_is_allowed(key, raw, message):
    pattern = rf"{key}='{raw}' is invalid: must be .*{re.escape(message)}"
    with pytest.raises(BadInput, match=pattern):
        TrainPhyLL().set_parameter(key, raw)


def test_a_nan_parameter_is_bad_input_before_anything_starts(labpnn, lab_dirs):
    res = labpnn("run", "train-ff", "--set", "divergence_bound=nan", "--no-progress")
    assert res.returncode == 2 and "divergence_bound='nan'" in res.stderr
    assert _files(lab_dirs[0]) == []


# -- 6: a poor registered twin is named when it is loaded ------------------------------------
def test_loading_a_poor_registered_twin_warns_like_fitting_one(monkeypatch, caplog):
    from labpnn.procedures.training import pat

    meta = {"registry_id": 3, "validation_nrmse": 0.97, "age_s": 5.0}
    monkeypatch.setattr(
        pat, "load_twin", lambda registry, layer, standardise, model=None: ("twin", meta)
    )
    procedure = TrainPAT()
    monkeypatch.setattr(procedure, "physical_layer", lambda: object())
    with caplog.at_level("WARNING", logger="labpnn.run"):
        assert procedure.obtain_twin(None) == ("twin", meta)
    assert "registered twin #3 explains little" in caplog.text and "0.97" in caplog.text
    caplog.clear()
    meta["validation_nrmse"] = 0.05
    with caplog.at_level("WARNING", logger="labpnn.run"):
        procedure.obtain_twin(None)
    assert "explains little" not in caplog.text


# -- 7: progress -----------------------------------------------------------------------------
def test_the_progress_bar_shows_the_epoch_and_accuracy(capsys):
    from labpnn.runner import _Progress

    class Ledger:
        def update_run(self, *args, **kwargs):
            pass

    bar = _Progress(Ledger(), "run", show=True, label="train-phyll")
    bar(1, 4, {"epoch": "1/4", "test_accuracy": 0.5})
    bar.close()
    err = capsys.readouterr().err
    assert "epoch=1/4" in err and "test_accuracy=0.5" in err


def test_epoch_lines_without_a_bar_are_rate_limited_but_keep_the_first_and_last(
    monkeypatch, caplog
):
    clock = iter([0.0, 1.0, 2.0, 7.0, 8.0])
    monkeypatch.setattr(common.time, "monotonic", lambda: next(clock))
    procedure = TrainFF()
    procedure._last_line = -float("inf")
    with caplog.at_level("INFO", logger="labpnn.run"):
        for epoch in range(1, 6):
            record = {"epoch": epoch, "train_accuracy": 0.5, "test_accuracy": 0.25, "loss": 0.1}
            procedure._epoch_line(record, 5, 0, 4)
    shown = [int(m.split()[1].split("/")[0]) for m in caplog.messages if m.startswith("epoch ")]
    assert shown == [1, 4, 5]  # 2 and 3 came within 5 s of the line before
    assert "epoch 1/5: train accuracy 0.5, test accuracy 0.25, loss 0.1" in caplog.messages[0]
    procedure.progress_bar_shown = True
    caplog.clear()
    procedure._epoch_line({"epoch": 5, "loss": None}, 5, 0, 4)
    assert caplog.messages == []


# -- 12: train-ff defaults per data set ------------------------------------------------------
def test_train_ff_uses_its_vowel_defaults_only_on_the_vowels():
    procedure = TrainFF()
    assert (procedure.setting("lr"), procedure.setting("epochs")) == (0.1, 200)
    procedure.set_parameter("dataset", "digits")
    assert (procedure.setting("lr"), procedure.setting("epochs")) == (0.03, 50)


# -- pause -----------------------------------------------------------------------------------
def _epochs_logged(path: Path) -> tuple[int, str]:
    try:
        with open_run(path) as f:
            done = f["results/epoch"].shape[0] if "results/epoch" in f else 0
            return done, str(f.attrs.get("run_id", ""))
    except Exception:  # being restructured: next poll
        return 0, ""


def _messages(path: Path) -> list[str]:
    try:
        with open_run(path) as f:
            return [m.decode() for m in f["log"]["message"]] if "log" in f else []
    except Exception:  # being restructured: next poll
        return []


def test_a_paused_training_run_holds_between_epochs_and_can_still_be_aborted(
    lab_dirs, direct_station
):
    from labpnn import live

    station = direct_station("acoustic")
    proc = subprocess.Popen(
        labpnn_cmd(*_phyll(station, "epochs=5000", "eval_every=1000", "seed=1")),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline, run_id, path = time.time() + 120, "", None
        while time.time() < deadline and not run_id and proc.poll() is None:
            for candidate in _files(lab_dirs[0]):
                done, rid = _epochs_logged(candidate)
                if done >= 1 and rid:
                    run_id, path = rid, candidate
            time.sleep(0.05)
        assert run_id, "the run never finished an epoch"
        live.request_pause(run_id)
        deadline = time.time() + 120  # the epoch under way finishes, then the run holds
        while not any("paused by the operator" in m for m in _messages(path)):
            assert time.time() < deadline and proc.poll() is None, "the run never paused"
            time.sleep(0.1)
        held = _epochs_logged(path)[0]
        time.sleep(1.5)
        assert _epochs_logged(path)[0] == held, "the epochs went on while paused"
        proc.send_signal(signal.SIGINT)  # an abort must not wait for a resume
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    victim = out.strip().splitlines()[-1]
    assert summary(victim)["status"] == "aborted"
    assert checkpoint_meta(victim)["epoch"] >= 1
