"""control-tm, control-actor and control-vae end to end through the CLI, on a small station."""

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml
from PIL import Image

HERE = Path(__file__).parent
SMALL_LOOP = [
    "--set", "n_targets=30", "--set", "n_probes=1536", "--set", "patterns_per_iteration=150",
    "--set", "actor_epochs=4", "--set", "actor_refit_epochs=2", "--set", "actor_hidden=128",
    "--set", "model_iterations=40", "--set", "model_epochs=1", "--set", "threads=1",
    "--set", "n_train_targets=400", "--set", "train_on=digits",
]  # fmt: skip


@pytest.fixture
def station(tmp_path):
    path = tmp_path / "small-control.yaml"
    shutil.copy(HERE / "small-control.yaml", path)
    return path


def run_file(result) -> str:
    return result.stdout.strip().splitlines()[-1]


def summary(path) -> dict:
    with h5py.File(path, "r") as f:
        return {k: f["summary"].attrs[k] for k in f["summary"].attrs}


def test_control_tm_needs_a_tm_then_projects_digits(labpnn, station):
    missing = labpnn("run", "control-tm", "--station", str(station), "--no-progress")
    assert missing.returncode == 2
    assert "calibrate-tm" in missing.stderr + missing.stdout
    labpnn("run", "calibrate-tm", "--station", str(station), "--set", "n_modes=256",
           "--no-progress", check=True)  # fmt: skip
    done = labpnn("run", "control-tm", "--station", str(station), "--set", "n_targets=30",
                  "--no-progress", check=True)  # fmt: skip
    path = run_file(done)
    values = summary(path)
    # the reference-only intensity came with the TM: one frame per target, plus one per
    # random pattern of the chance level (min(targets, 32)), nothing else
    assert values["fidelity"] >= 0.85 and values["queries"] == 30 + 30
    assert values["baseline_queries"] == 30 and abs(values["baseline_fidelity"]) < 0.15
    # the estimate counts them too (and the reference frame a TM may lack)
    estimate = labpnn("run", "control-tm", "--station", str(station), "--set", "n_targets=30",
                      "--dry-run", check=True)  # fmt: skip
    assert "about 61 hardware queries" in estimate.stdout
    with h5py.File(path, "r") as f:
        assert "control/reference_frame" not in f
        assert f.attrs["dof_per_target_pixel"] == 4.0
        assert f["frames/projections"].shape == (30, 8, 8)
        assert f["control/patterns"].shape == (30, 16, 16)
        assert f["results/noiseless_fidelity"][-1] >= values["fidelity"] - 0.05
    assert labpnn("report", path).returncode == 0
    assert Path(path).with_suffix(".png").stat().st_size > 10_000


def test_control_actor_learns_and_resumes_bit_identically(labpnn, station):
    args = ["run", "control-actor", "--station", str(station), "--no-progress",
            "--set", "n_iterations=1", *SMALL_LOOP]  # fmt: skip
    whole = run_file(labpnn(*args, check=True))
    values = summary(whole)
    assert values["fidelity"] >= 0.85 and values["fidelity_std"] < 0.1
    assert values["queries"] == 1536 + 150 + 2 * 30
    # the chance level comes free from the round-0 random probes
    assert values["baseline_queries"] == 0 and abs(values["baseline_fidelity"]) < 0.15
    with h5py.File(whole, "r") as f:
        assert list(f["results/iteration"][()]) == [0, 1]
        assert f["frames/camera"].shape == (1536 + 150 + 60, 8, 8)
        assert f["frames/slm"].shape == (1536 + 150 + 60, 16, 16)
        assert f["traces/fidelity"].shape == (2, 30)
        assert f["results/model_tm_pearson"][-1] > 0.95
        assert f["results/model_tm_pearson"].attrs["units"] == "1 (|Pearson r|)"
        assert f["timing/digital_cpu_s"].attrs["units"] == "s"

    # The camera stalls in iteration 1: the run fails, keeping the round-0 checkpoint.
    config = yaml.safe_load(station.read_text())
    config["bench"]["simulation"]["faults"] = {"camera_stall_after_frames": 1536 + 30 + 100}
    station.write_text(yaml.safe_dump(config))
    failed = labpnn(*args)
    assert failed.returncode == 1
    broken = run_file(failed)
    config["bench"]["simulation"]["faults"] = {}
    station.write_text(yaml.safe_dump(config))
    resumed = run_file(labpnn("resume", broken, "--no-progress", check=True))
    with h5py.File(whole, "r") as a, h5py.File(resumed, "r") as b:
        assert np.array_equal(a["results/fidelity"][()], b["results/fidelity"][()])
        assert np.array_equal(a["traces/fidelity"][-1], b["traces/fidelity"][-1])
        assert b.attrs["resumed_from"] == broken
        assert b["summary"].attrs["baseline_fidelity"] == a["summary"].attrs["baseline_fidelity"]
    assert labpnn("report", resumed).returncode == 0


def test_control_vae_runs_the_same_loop(labpnn, station):
    path = run_file(labpnn("run", "control-vae", "--station", str(station), "--no-progress",
                           "--set", "n_iterations=1", "--set", "latent_size=128",
                           "--set", "vae_epochs=1", *SMALL_LOOP, check=True))  # fmt: skip
    values = summary(path)
    assert values["fidelity"] >= 0.85
    with h5py.File(path, "r") as f:
        assert len(f["results/fidelity"]) == 2
        params = json.loads(f.attrs["parameters"])
        assert params["latent_size"] == 128


def test_a_distorting_target_is_refused_before_anything_starts(labpnn, station, tmp_path):
    wide = tmp_path / "wide.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 20), dtype=np.uint8)).save(wide)
    result = labpnn("run", "control-actor", "--station", str(station), "--set",
                    f"targets={wide}", "--no-progress")  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "distort" in result.stderr + result.stdout
    assert not list(Path(os.environ["LABPNN_DATA_DIR"]).rglob("*.h5"))


def test_a_dry_run_refuses_a_query_budget_the_probes_alone_exceed(labpnn, station):
    result = labpnn("run", "control-actor", "--station", str(station), "--dry-run",
                    "--set", "n_targets=30", "--set", "n_probes=1536",
                    "--set", "max_queries=1000")  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "max_queries=1000 cannot cover the 1536 probes" in result.stderr + result.stdout
    assert "hardware queries" not in result.stdout  # no estimate for a run that cannot start


@pytest.mark.timeout(120)
@pytest.mark.parametrize("procedure", ["control-tm", "control-actor"])
def test_a_dry_run_refuses_an_exposure_past_the_lab_limit_as_a_run_would(
    labpnn, station, procedure
):
    """The station's exposure limit (1e-5..0.1 s, tightened here to 0.01 s) is checked
    before connecting: a dry run (and so the queue and schedules) refuses what a run would."""
    tightened = ["--station-set", "instruments.camera.limits.exposure_s=[1.0e-5, 0.01]"]
    for value, limit in (("1", "0.1"), ("0.05", "0.01")):
        extra = tightened if limit == "0.01" else []
        result = labpnn("run", procedure, "--station", str(station), *extra, "--dry-run",
                        "--set", "n_targets=30", "--set", f"exposure_s={value}")  # fmt: skip
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"exposure_s={value} s is outside the lab limit 1e-05..{limit} s" in result.stderr
        assert "hardware queries" not in result.stdout
    within = labpnn("run", procedure, "--station", str(station), *tightened, "--dry-run",
                    "--set", "n_targets=30", "--set", "exposure_s=0.005")  # fmt: skip
    assert within.returncode == 0 and "hardware queries" in within.stdout, within.stderr
    assert not list(Path(os.environ["LABPNN_DATA_DIR"]).rglob("*.h5"))
