"""The run queue in the ledger: order, editing, atomic claims, and the headless processor."""

from __future__ import annotations

import threading

import pytest
from click.testing import CliRunner

from labpnn.errors import BadInput, BenchBusy
from labpnn.gui.cli import queue as queue_cli
from labpnn.queue import RunQueue, processing_lock, run_command

from .conftest import FAKE_STATION


def test_entries_keep_their_order_through_moves_and_removals():
    with RunQueue() as q:
        a = q.add("count-frames", "fake", {"n_frames": 1})
        b = q.add("count-frames", "fake", {"n_frames": 2})
        c = q.add("count-frames", "fake", {"n_frames": 3})
        d = q.add("count-frames", "fake", {"n_frames": 4}, front=True)
        assert [e.id for e in q.pending()] == [d.id, a.id, b.id, c.id]
        q.move(c.id, 0)
        q.remove(a.id)
        assert [e.id for e in q.pending()] == [c.id, d.id, b.id]
        claimed = q.claim_next()
        assert claimed.id == c.id and claimed.state == "running"
        with pytest.raises(BadInput, match="abort the run"):
            q.remove(c.id)
        q.finish(c.id, "completed", "abc123")
        assert [e.id for e in q.pending()] == [d.id, b.id]
        assert q.history()[0].state == "completed"


def test_an_entry_left_running_by_a_dead_processor_is_never_rerun_silently():
    with RunQueue() as q:
        q.add("count-frames", "fake", {})
        q.claim_next()  # ... and the processor dies here
        settled = q.recover()
        assert [e.state for e in settled] == ["crashed"]
        assert "not re-run" in settled[0].error
        assert q.claim_next() is None


def test_only_one_processor_holds_the_queue():
    with processing_lock(), pytest.raises(BenchBusy, match="already being processed"):
        with processing_lock(wait_s=0.1):
            pass


def test_a_processor_waits_out_a_reader_settling_stale_entries():
    """`queue list` or an opening GUI holds the lock for an instant (recover_unattended);
    a `queue run` started in that instant must not be refused."""
    held, release = threading.Event(), threading.Event()

    def reader():
        with processing_lock(wait_s=0):
            held.set()
            release.wait(5)

    thread = threading.Thread(target=reader)
    thread.start()
    held.wait(5)
    threading.Timer(0.3, release.set).start()
    with processing_lock():  # waits for the reader instead of failing
        assert release.is_set()
    thread.join(5)


def test_parameters_become_set_options_that_parse_back():
    cmd = run_command(
        "calibrate-tm",
        "optical-sim",
        {"n_modes": 64, "lr": 1e-05, "x": True},
        ["bench.simulation.seed=3"],
        note="n",
        tags=["a"],
        started_by="gui",
    )
    assert cmd[cmd.index("--set") + 1] == "n_modes=64"
    assert "lr=1e-05" in cmd and "x=True" in cmd
    assert cmd[-3:] == ["--started-by", "gui", "--no-progress"]
    assert "bench.simulation.seed=3" in cmd


def test_headless_queue_runs_entries_in_order_from_the_cli():
    runner = CliRunner()
    station = str(FAKE_STATION)
    out = runner.invoke(
        queue_cli,
        ["add", "count-frames", "--station", station, "--set", "n_frames=2", "--note", "first"],
    )
    assert out.exit_code == 0, out.output
    out = runner.invoke(
        queue_cli,
        ["add", "count-frames", "--station", station, "--set", "n_frames=3", "--note", "second"],
    )
    assert out.exit_code == 0, out.output
    bad = runner.invoke(
        queue_cli, ["add", "count-frames", "--station", station, "--set", "n_frames=0"]
    )
    assert bad.exit_code != 0 and "n_frames" in str(bad.exception or bad.output)
    listing = runner.invoke(queue_cli, ["list"])
    assert "count-frames" in listing.output and listing.output.count("queued") == 2
    out = runner.invoke(queue_cli, ["run"])
    assert out.exit_code == 0, out.output
    with RunQueue() as q:
        done = list(reversed(q.history()))
        assert [e.note for e in done] == ["first", "second"]
        assert [e.state for e in done] == ["completed", "completed"]
        assert all(e.run_id for e in done)
        rows = [q.ledger.run(e.run_id) for e in done]
        assert rows[0]["start_time"] < rows[1]["start_time"]
        assert all(r["started_by"] == "queue" for r in rows)


def test_queue_run_exits_1_when_an_entry_did_not_complete():
    runner = CliRunner()
    station = str(FAKE_STATION)
    for extra in ([], ["--station-set", "instruments.detector.stays_on=true"]):
        added = runner.invoke(
            queue_cli, ["add", "count-frames", "--station", station, "--set", "n_frames=2", *extra]
        )
        assert added.exit_code == 0, added.output
    out = runner.invoke(queue_cli, ["run"])
    assert out.exit_code == 1, out.output  # the bench of the second was not left safe
    assert "processed 2 entries, 1 not completed" in out.output
    with RunQueue() as q:
        assert sorted(e.state for e in q.history()) == ["completed", "failed"]
