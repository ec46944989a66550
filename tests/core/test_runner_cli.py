"""The runner through the real CLI, in real subprocesses, on a fake bench."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

from tests.conftest import labpnn_cmd

FAKE = str(Path(__file__).parent / "fake-station.yaml")
EXTRA = "count-frames=tests.core.fakes:CountFrames,hang=tests.core.fakes:Hang"


@pytest.fixture(autouse=True)
def fake_procedures(monkeypatch):
    monkeypatch.setenv("LABPNN_EXTRA_PROCEDURES", EXTRA)


def h5_files(data_dir):
    return sorted(Path(data_dir).rglob("*.h5"))


def test_a_completed_run_prints_its_file_and_show_reports_it(labpnn, lab_dirs):
    res = labpnn(
        "run",
        "count-frames",
        "--station",
        FAKE,
        "--set",
        "n_frames=4",
        "--note",
        "first light",
        "--tag",
        "smoke",
    )
    assert res.returncode == 0, res.stderr
    path = res.stdout.strip().splitlines()[-1]
    assert Path(path).exists() and path.endswith(".h5")
    shown = json.loads(labpnn("show", path, "--json", check=True).stdout)
    assert shown["status"] == "completed"
    assert shown["parameters"]["n_frames"] == 4
    assert shown["summary"]["queries"] == 4
    assert shown["safe_state"]["detector"] == "ok"
    assert shown["note"] == "first light" and shown["tags"] == ["smoke"]
    with h5py.File(path, "r") as f:
        assert f["frames/detector"].shape == (4, 8, 8)
        assert json.loads(f.attrs["station_snapshot"])["labpnn"]["station"] == "fake-bench"
        assert f.attrs["simulated"] == 0 or not f.attrs["simulated"]
    # --from reruns with the same parameters
    again = labpnn("run", "--from", path, "--no-progress")
    assert again.returncode == 0, again.stderr
    rerun = json.loads(labpnn("show", again.stdout.strip().splitlines()[-1], "--json").stdout)
    assert rerun["parameters"]["n_frames"] == 4
    with h5py.File(again.stdout.strip().splitlines()[-1], "r") as f:
        # the run it repeats, by id too: the path breaks when the data directory moves
        assert f.attrs["rerun_of_run_id"] == shown["run_id"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "no-such-procedure"], "unknown procedure 'no-such-procedure'"),
        (
            ["run", "count-frames", "--station", FAKE, "--set", "bogus=1"],
            "unknown parameter 'bogus'",
        ),
        (
            ["run", "count-frames", "--station", FAKE, "--set", "n_frames=many"],
            "n_frames='many' is invalid",
        ),
        (
            ["run", "count-frames", "--station", FAKE, "--set", "n_frames=0"],
            "n_frames='0' is invalid",
        ),
        (
            ["run", "count-frames", "--station", FAKE, "--set", "exposure_s=0.5"],
            "exposure_s=0.5 s is outside the lab limit 1e-05..0.1 s",
        ),
        (
            [
                "run",
                "count-frames",
                "--station",
                FAKE,
                "--station-set",
                "instruments.detector.driver=labpnn.drivers.nope.Thing",
            ],
            "unknown driver class",
        ),
        (
            ["run", "count-frames", "--station", "no-such-station"],
            "unknown station 'no-such-station'",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_and_no_run_file(labpnn, lab_dirs, args, message):
    res = labpnn(*args)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr
    assert "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert h5_files(lab_dirs[0]) == []


def test_malformed_yaml_names_the_line(labpnn, lab_dirs, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("instruments:\n  detector: {driver: x\nbench: {kind: fake}\n")
    res = labpnn("run", "count-frames", "--station", str(bad))
    assert res.returncode == 2
    assert "malformed YAML at line" in res.stderr and "Traceback" not in res.stderr
    assert h5_files(lab_dirs[0]) == []


def test_dry_run_estimates_without_starting(labpnn, lab_dirs):
    res = labpnn("run", "count-frames", "--station", FAKE, "--set", "n_frames=50", "--dry-run")
    assert res.returncode == 0, res.stderr
    assert "about 50 hardware queries" in res.stdout
    assert h5_files(lab_dirs[0]) == []


def _start(*args):
    return subprocess.Popen(
        labpnn_cmd(*args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def _wait_for_frames(data_dir, n, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for path in h5_files(data_dir):
            try:
                with h5py.File(path, "r", libver="latest", swmr=True) as f:
                    if "frames/detector" in f and f["frames/detector"].shape[0] >= n:
                        return path
            except (OSError, KeyError):
                pass
        time.sleep(0.05)
    raise AssertionError("the run never wrote frames")


def test_sigint_aborts_keeps_data_and_makes_the_bench_safe(labpnn, lab_dirs):
    proc = _start(
        "run",
        "count-frames",
        "--station",
        FAKE,
        "--set",
        "n_frames=100000",
        "--set",
        "delay_s=0.01",
        "--no-progress",
    )
    path = _wait_for_frames(lab_dirs[0], 3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    shown = json.loads(labpnn("show", str(path), "--json").stdout)
    assert shown["status"] == "aborted"
    assert shown["safe_state"] == {"detector": "ok", "all_safe": True}
    assert shown["frames"]["detector"][0] >= 3
    assert list(shown["frames"]) == ["detector"]  # its time stamps are not a frame stream


def test_a_run_that_cannot_make_its_bench_safe_does_not_read_as_a_success(labpnn, lab_dirs):
    from labpnn.ledger import Ledger

    res = labpnn(
        *("run", "count-frames", "--station", FAKE, "--set", "n_frames=2", "--no-progress"),
        *("--station-set", "instruments.detector.stays_on=true"),
    )
    assert res.returncode == 1, res.stderr  # the data are fine, the bench is not
    assert "NOT left safe (detector: failed: InstrumentError" in res.stderr
    assert "labpnn safe-off --station fake-bench" in res.stderr
    path = res.stdout.strip().splitlines()[-1]
    shown = json.loads(labpnn("show", path, "--json").stdout)
    assert shown["status"] == "failed" and "NOT left safe" in shown["error"]
    assert shown["safe_state"]["all_safe"] is False and shown["frames"]["detector"][0] == 2
    assert "NOT SAFE, check by hand: detector: failed" in labpnn("show", path).stdout
    ledger = Ledger()
    try:
        assert [e["kind"] for e in ledger.events(shown["run_id"])] == ["unsafe"]
    finally:
        ledger.close()


def test_a_second_ctrl_c_while_the_run_ends_does_not_cut_its_safe_state_short(labpnn, lab_dirs):
    proc = _start(
        *("run", "count-frames", "--station", FAKE, "--no-progress"),
        *("--set", "n_frames=100000", "--set", "delay_s=0.01"),
        "--station-set", "instruments.detector.safe_delay_s=2",
    )  # fmt: skip
    path = _wait_for_frames(lab_dirs[0], 3)
    proc.send_signal(signal.SIGINT)
    time.sleep(1.0)  # the run has stopped and is making the detector safe (2 s)
    proc.send_signal(signal.SIGINT)  # an impatient operator
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert out.strip().splitlines()[-1] == str(path)
    shown = json.loads(labpnn("show", str(path), "--json").stdout)
    assert shown["status"] == shown["file_status"] == "aborted"
    assert shown["safe_state"] == {"detector": "ok", "all_safe": True}


def test_a_full_disk_at_the_end_record_still_ends_the_run_in_the_ledger(lab_dirs, monkeypatch):
    from labpnn.ledger import Ledger
    from labpnn.runner import RunRequest, execute
    from labpnn.storage import RunWriter

    def no_space(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(RunWriter, "finish", no_space)
    outcome = execute(
        RunRequest("count-frames", station=FAKE, params={"n_frames": 2}, show_progress=False)
    )
    assert outcome.status == "failed" and outcome.exit_code == 1
    assert "end record could not be written" in outcome.error and "No space" in outcome.error
    ledger = Ledger()
    try:
        row = ledger.run(outcome.run_id)
    finally:
        ledger.close()
    assert row["status"] == "failed" and "No space left on device" in row["error"]
    with h5py.File(outcome.path, "r", libver="latest", swmr=True, locking=False) as f:
        assert f["frames/detector"].shape[0] == 2  # what was taken stays readable


@pytest.mark.parametrize("inside", ["", "runs"])
def test_a_data_dir_that_cannot_take_files_is_bad_input_before_connecting(
    labpnn, tmp_path, monkeypatch, inside
):
    """E.g. LABPNN_DATA_DIR pointing at a file, or below one (a read-only mount says the
    same through the same check; permissions cannot be tested as root)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    target = blocker / inside if inside else blocker
    monkeypatch.setenv("LABPNN_DATA_DIR", str(target))
    res = labpnn(
        *("run", "count-frames", "--station", FAKE, "--set", "n_frames=2", "--no-progress")
    )
    assert res.returncode == 2, res.stderr
    assert f"cannot write run files to {target}" in res.stderr and "--data-dir" in res.stderr
    assert "Traceback" not in res.stderr


def test_safe_off_stops_a_run_on_the_station_before_switching_it_off(labpnn, lab_dirs):
    """Not RF off under a run that goes on measuring noise and calls it complete."""
    proc = _start(
        *("run", "count-frames", "--station", FAKE, "--no-progress"),
        *("--set", "n_frames=100000", "--set", "delay_s=0.01"),
    )  # fmt: skip
    path = _wait_for_frames(lab_dirs[0], 3)
    off = labpnn("safe-off", "--station", FAKE, timeout=60)
    assert off.returncode == 0, off.stderr
    assert "stopping run" in off.stdout and "detector: ok" in off.stdout
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    shown = json.loads(labpnn("show", str(path), "--json").stdout)
    assert shown["status"] == "aborted" and shown["safe_state"]["all_safe"] is True


def test_safe_off_waits_for_held_instruments_then_makes_them_safe_anyway(labpnn, lab_dirs):
    from labpnn.station import Station, StationConfig, hold_locks

    with hold_locks(Station(StationConfig.load(FAKE)).lock_paths(), 0, "a GUI"):
        off = labpnn("safe-off", "--station", FAKE, "--wait", "0.5", timeout=60)
    assert off.returncode == 0, off.stderr
    assert "still held after 0.5 s" in off.stdout and "detector: ok" in off.stdout


def test_kill_9_leaves_a_readable_file_marked_crashed_and_repairable(labpnn, lab_dirs):
    proc = _start(
        "run",
        "count-frames",
        "--station",
        FAKE,
        "--set",
        "n_frames=100000",
        "--set",
        "delay_s=0.005",
        "--no-progress",
    )
    path = _wait_for_frames(lab_dirs[0], 5)
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        seen = f["frames/detector"].shape[0]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        assert f["frames/detector"].shape[0] >= seen  # every flushed frame is there
        assert f.attrs["status"] == "running"  # the file could not know
    listing = labpnn("stations")  # any labpnn command reaps dead runs
    assert "marked crashed" in listing.stderr
    shown = json.loads(labpnn("show", str(path), "--json").stdout)
    assert shown["status"] == "crashed" and shown["file_status"] == "running"
    fixed = labpnn("repair", str(path))
    assert fixed.returncode == 0, fixed.stderr
    with h5py.File(path, "r") as f:  # a plain open works again
        assert f.attrs["status"] == "crashed"
        assert f["frames/detector"].shape[0] >= seen


def test_watchdog_fails_a_run_that_stops_reporting_progress(labpnn, lab_dirs):
    res = labpnn("run", "hang", "--station", FAKE, "--no-progress", timeout=60)
    assert res.returncode == 1, res.stderr
    path = res.stdout.strip().splitlines()[-1]
    shown = json.loads(labpnn("show", path, "--json").stdout)
    assert shown["status"] == "failed"
    assert shown["error"].startswith("watchdog")
    assert shown["safe_state"]["detector"] == "ok"


def test_a_watchdog_end_on_a_bench_that_stays_unsafe_says_so(labpnn, lab_dirs):
    from labpnn.ledger import Ledger

    res = labpnn(
        *("run", "hang", "--station", FAKE, "--no-progress"),
        *("--station-set", "instruments.detector.stays_on=true"),
        timeout=60,
    )
    assert res.returncode == 1, res.stderr
    shown = json.loads(labpnn("show", res.stdout.strip().splitlines()[-1], "--json").stdout)
    assert shown["error"].startswith("watchdog") and "NOT left safe" in shown["error"]
    ledger = Ledger()
    try:
        assert [e["kind"] for e in ledger.events(shown["run_id"])] == ["unsafe"]
    finally:
        ledger.close()


def test_help_is_fast_to_import():
    # labpnn --help must not pull torch, qcodes, h5py or Qt.
    code = "import sys, labpnn.cli; print(sorted(m for m in ('torch','qcodes','h5py','PyQt6','numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_ctrl_c_while_waiting_for_a_busy_bench_stops_at_once_without_touching_it(lab_dirs):
    from labpnn.station import Station, StationConfig, hold_locks

    config = StationConfig.load(str(FAKE))
    errors = lab_dirs[1] / "stderr.txt"
    with hold_locks(Station(config).lock_paths(), 0, "gui"), open(errors, "w") as sink:
        proc = subprocess.Popen(
            labpnn_cmd("run", "count-frames", "--station", str(FAKE), "--lock-timeout", "300"),
            stdout=subprocess.DEVNULL,
            stderr=sink,
            text=True,
        )
        try:
            deadline = time.monotonic() + 120
            while "bench busy: waiting up to" not in errors.read_text():
                assert proc.poll() is None and time.monotonic() < deadline, errors.read_text()
                time.sleep(0.1)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)  # not the 300 s of --lock-timeout
        finally:
            if proc.poll() is None:
                proc.kill()
    err = errors.read_text()
    assert proc.returncode == 130, err
    assert "stopped while waiting for the bench; nothing was started" in err
    assert not h5_files(lab_dirs[0])


@pytest.mark.parametrize("command", [("run", "--dry-run"), ("queue", "add")])
def test_a_procedure_for_another_bench_is_refused_by_dry_runs_and_the_queue(
    labpnn, lab_dirs, command
):
    verb, flag = command
    args = (verb, "calibrate-vna", "--station", "optical-sim", "--dry-run") if verb == "run" else (
        verb, flag, "calibrate-vna", "--station", "optical-sim")  # fmt: skip
    res = labpnn(*args)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "calibrate-vna runs on microwave benches, but station 'optical-sim' is an optical" in (
        res.stderr
    )


@pytest.mark.parametrize("command", ["show", "report", "repair"])
def test_a_file_that_is_not_hdf5_is_a_clear_error(labpnn, tmp_path, command):
    bad = tmp_path / "notes.h5"
    bad.write_text("not a run file")
    res = labpnn(command, str(bad))
    assert res.returncode == 2, res.stderr
    assert "is not an HDF5 file, so not a labpnn run file" in res.stderr
    assert "Traceback" not in res.stderr
