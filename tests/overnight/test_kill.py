"""kill -9 at random moments: run files stay readable and complete; runs end up crashed;
a killed scheduler neither loses nor repeats a firing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from labpnn.ledger import Ledger
from labpnn.schedules import firings
from tests.overnight.conftest import at
from tests.overnight.killing import kill_trials


def test_ten_runs_killed_at_random_moments_keep_every_flushed_frame(bench, lab_dirs):
    data_dir, _ = lab_dirs
    report = kill_trials(10, str(bench("kill-bench", "fake")), data_dir, dict(os.environ), seed=7)
    assert report.ok, "\n".join(report.lines())
    assert sum(t.flushed for t in report.trials) >= 10


def _scheduler(clock_start: float, speed: float) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "labpnn.overnight_cli",
            "scheduler",
            "-v",
            "--clock-start",
            repr(clock_start),
            "--clock-speed",
            str(speed),
            "--idle",
            "2",
            "--poll",
            "1",
        ],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_killed_scheduler_neither_repeats_the_running_firing_nor_loses_the_next(
    bench, add, ledger
):
    add("every2", "slow-step", bench(), "*/2 * * * *", at(1, 58), {"seconds": 4})
    first = _scheduler(at(2) - 1.0, 1.0)
    try:
        run = _wait_for(
            lambda: [r for r in ledger.runs() if r["status"] == "running"],
            20,
            "the 02:00 run to start",
        )[0]
        time.sleep(0.5)
    finally:
        os.kill(first.pid, signal.SIGKILL)  # the scheduler dies; its run must not
        first.wait()
        first.stderr.close()
    assert ledger.run(run["run_id"])["status"] == "running"
    second = _scheduler(at(2) + 30, 10.0)  # back at 02:00:30; 02:02 is 9 s away
    try:
        _wait_for(
            lambda: len([f for f in firings(ledger) if f["status"] == "completed"]) == 2,
            45,
            "both firings to complete",
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=20)
        log = second.stderr.read().decode()
        second.stderr.close()
    got = firings(ledger)
    assert [(f["due"], f["status"]) for f in got] == [
        (at(2), "completed"),
        (at(2, 2), "completed"),
    ], log
    assert got[0]["run_id"] == run["run_id"]  # recorded from the run that outlived it
    assert len(Ledger().runs_started_by(f"schedule:every2#{got[0]['id']}")) == 1
    assert len(ledger.runs()) == 2  # nothing started twice


def test_a_restarted_scheduler_still_stops_a_run_past_its_max_runtime(bench, add, ledger):
    """systemd restarts a crashed scheduler; the night's run must keep its time limit."""
    add("long", "slow-step", bench(), "0 2 * * *", at(1, 58), {"seconds": 120},
        max_runtime_s=6.0)  # fmt: skip
    first = _scheduler(at(2) - 1.0, 1.0)
    try:
        run = _wait_for(
            lambda: [r for r in ledger.runs() if r["status"] == "running"], 20, "the run to start"
        )[0]
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        first.stderr.close()
    second = _scheduler(at(2) + 2.0, 1.0)
    try:
        _wait_for(
            lambda: ledger.run(run["run_id"])["status"] != "running", 60, "the run to be stopped"
        )
        (firing,) = _wait_for(
            lambda: [f for f in firings(ledger) if f["status"] != "running"], 20, "its firing"
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=20)
        log = second.stderr.read().decode()
        second.stderr.close()
    assert ledger.run(run["run_id"])["status"] == "aborted", log
    assert firing["status"] == "aborted", log
    assert "stopped by the scheduler after its max runtime of 6 s" in firing["reason"], log


def _killed_mid_restructure(path):
    """A run file whose writer was killed while it had the file open without SWMR."""
    code = f"""
import os, signal, h5py, numpy as np
with h5py.File({str(path)!r}, "w", libver="latest") as f:
    f["frames"] = np.arange(5)
f = h5py.File({str(path)!r}, "r+", libver="latest")   # structural change under way
f.create_dataset("checkpoint", data=np.arange(3))
f.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""
    subprocess.run([sys.executable, "-c", code], timeout=60)
    return path


def test_labpnn_repair_mends_a_file_killed_mid_restructure(tmp_path):
    import h5py

    path = _killed_mid_restructure(tmp_path / "run.h5")
    # not in this ledger and just written: its run might live on another machine
    cautious = subprocess.run(
        [sys.executable, "-m", "labpnn.cli", "repair", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cautious.returncode == 2 and "may still be writing it" in cautious.stderr
    res = subprocess.run(
        [sys.executable, "-m", "labpnn.cli", "repair", str(path), "--force"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    with h5py.File(path, "r") as f:  # plain h5py now
        assert list(f["frames"][()]) == [0, 1, 2, 3, 4] and f.attrs["status"] == "crashed"


def test_a_writer_killed_outside_swmr_mode_leaves_a_file_the_next_start_reopens(tmp_path, ledger):
    """The writer reopens its file without SWMR for each structural change (new dataset,
    checkpoint); a kill -9 in that moment used to leave a file nobody could open."""
    import h5py

    from labpnn.h5clear import status_flags

    path = _killed_mid_restructure(tmp_path / "run.h5")
    assert status_flags(path) != 0
    try:
        h5py.File(path, "r", libver="latest", swmr=True).close()
        raise AssertionError("HDF5 now opens such files; labpnn.h5clear may be unneeded")
    except OSError as exc:
        assert "not already open for SWMR writing" in str(exc)
    ledger.start_run(
        run_id="dead", procedure="p", file=str(path), lock_path=str(tmp_path / "dead.lock")
    )  # its lock is free: it died
    assert ledger.reap_crashed() == ["dead"]
    assert status_flags(path) == 0
    with h5py.File(path, "r", libver="latest", swmr=True) as f:
        assert list(f["frames"][()]) == [0, 1, 2, 3, 4]
