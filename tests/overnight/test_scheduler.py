"""The scheduler on a fake clock: every firing ends in the ledger with a status and a reason."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from labpnn.notify import Notifier, NotifyConfig
from labpnn.schedules import firings
from labpnn.station import StationConfig, hold_locks
from tests.overnight.conftest import at

QUICK = {"steps": 2, "step_s": 0.01}


def statuses(ledger, name=None):
    return [(f["status"], f["reason"] or "") for f in firings(ledger, schedule=name)]


def test_a_nightly_firing_runs_once_and_its_run_is_linked(bench, add, ledger, scheduler_at):
    add("tm-nightly", "night-measure", bench(), "0 2 * * *", at(1, 50), QUICK)
    scheduler_at(at(1, 55)).run(until=at(4))
    (firing,) = firings(ledger)
    assert firing["status"] == "completed", firing
    assert firing["due"] == at(2) and firing["fired"] >= at(2)
    run = ledger.run(firing["run_id"])
    assert run["status"] == "completed"
    assert run["started_by"] == f"schedule:tm-nightly#{firing['id']}"
    assert json.loads(run["parameters"])["steps"] == 2


def test_firings_due_while_the_scheduler_was_down_are_coalesced_into_one_run(
    bench, add, ledger, scheduler_at
):
    add("hourly", "night-measure", bench(), "0 * * * *", at(0, 30), QUICK, misfire_grace_s=1800)
    # the scheduler comes back at 03:10: 01:00 and 02:00 were missed, 03:00 runs (10 min late)
    scheduler_at(at(3, 10)).run(until=at(3, 20))
    got = statuses(ledger)
    assert [s for s, _ in got] == ["missed", "missed", "completed"]
    assert "the scheduler was not running at 2030-01-01 01:00:00" in got[0][1]
    assert "coalesced into the firing due 2030-01-01 03:00:00" in got[0][1]


def test_an_edited_schedule_counts_from_the_edit_not_from_its_last_firing(
    bench, add, ledger, scheduler_at
):
    from labpnn.schedules import get_schedule, update_schedule

    add("nightly", "night-measure", bench(), "0 2 * * *", at(1), QUICK)
    scheduler_at(at(1, 55)).run(until=at(2, 30))
    # at 10:00 the time changes to 05:00: today's 05:00 was never asked for, so it is not
    # "missed"; the next firing is tomorrow's 05:00
    update_schedule(ledger, "nightly", now=at(3), max_runtime_s=600)  # not its time
    assert get_schedule(ledger, "nightly").created == at(1)  # firings stay as they were due
    update_schedule(ledger, "nightly", now=at(10), cron="0 5 * * *")
    scheduler_at(at(10)).run(until=at(10, 5))
    assert [s for s, _ in statuses(ledger)] == ["completed"]
    scheduler_at(at(4, 55, day=2)).run(until=at(6, day=2))
    got = firings(ledger)
    assert [f["status"] for f in got] == ["completed", "completed"]
    assert got[1]["due"] == at(5, day=2)


def test_a_firing_later_than_its_grace_is_missed_with_the_reason(bench, add, ledger, scheduler_at):
    add("nightly", "night-measure", bench(), "0 2 * * *", at(1), QUICK, misfire_grace_s=600)
    scheduler_at(at(9)).run(until=at(9, 5))
    ((status, reason),) = statuses(ledger)
    assert status == "missed"
    assert "late is more than this schedule's grace of 600 s" in reason


def test_a_busy_bench_makes_the_firing_wait_then_miss_with_bench_busy(
    bench, add, ledger, scheduler_at
):
    station = bench()
    add("tm", "night-measure", station, "0 2 * * *", at(1), QUICK, lock_timeout_s=0.5)
    config = StationConfig.load(station)
    from labpnn.station import Station

    with hold_locks(Station(config).lock_paths(), 0, "gui"):  # the GUI holds the bench
        scheduler_at(at(1, 59)).run(until=at(2, 30))
    ((status, reason),) = statuses(ledger)
    assert status == "missed"
    assert reason.startswith("bench busy")
    (row,) = ledger.runs(status="missed")  # the runner recorded it too, never dropped
    assert row["started_by"].startswith("schedule:tm#")


def test_at_most_one_run_per_schedule_the_next_firing_is_missed(bench, add, ledger, scheduler_at):
    add("slow", "slow-step", bench(), "* * * * *", at(1, 59), {"seconds": 1.5})
    sched = scheduler_at(
        at(
            1,
            59,
        ),
        poll_s=30.0,
    )  # 30 fake s per poll: the next minute comes
    sched.run(
        until=at(
            2,
            1,
        )
    )
    got = statuses(ledger)
    assert got[0][0] == "completed"
    assert any(s == "missed" and "was still running" in r for s, r in got[1:])


@pytest.mark.parametrize(
    "fault, status, reason",
    [
        ("error", "failed", "InstrumentError: probe: the instrument reported error -222"),
        ("nan", "failed", "BadData: probe returned NaN at step"),
        ("hang", "failed", "watchdog"),
        ("crash", "crashed", "killed by signal 9"),
    ],
)
def test_each_fault_ends_the_firing_with_a_status_and_a_reason(
    bench, add, ledger, scheduler_at, fault, status, reason
):
    station = bench(faults={fault: 1.0})
    add("n", "night-measure", station, "0 2 * * *", at(1), {"steps": 3, "step_s": 0.0})
    scheduler_at(at(1, 59)).run(until=at(3))
    ((got_status, got_reason),) = statuses(ledger)
    assert got_status == status
    assert reason in got_reason
    if fault != "crash":  # a crash leaves no chance to make safe; the others do
        assert (
            station.parent / "night-optical.probe.state.json"
        ).read_text() == '{"output": false}'


def test_a_transient_timeout_is_retried_recorded_and_the_run_completes(
    bench, add, ledger, scheduler_at
):
    add(
        "n",
        "night-measure",
        bench(faults={"timeout": 1.0}),
        "0 2 * * *",
        at(1),
        {"steps": 3, "step_s": 0.0},
    )
    scheduler_at(at(1, 59)).run(until=at(3))
    (firing,) = firings(ledger)
    assert firing["status"] == "completed"
    events = ledger.events(firing["run_id"])
    assert [e["kind"] for e in events] == ["retry", "retry"]
    assert "retry 1/3 of read step" in events[0]["detail"]
    from labpnn.storage import read_run

    info = read_run(ledger.run(firing["run_id"])["file"])
    assert info["summary"]["retries"] == 2
    assert sum("retry" in m for _, _, m in info["log"]) >= 2


def test_bad_input_at_firing_time_is_recorded_not_dropped(bench, add, ledger, scheduler_at):
    station = bench()
    add("n", "night-measure", station, "0 2 * * *", at(1), QUICK)
    station.unlink()  # someone moved the station file after the schedule was added
    scheduler_at(at(1, 59)).run(until=at(3))
    ((status, reason),) = statuses(ledger)
    assert status == "failed"
    assert reason.startswith("bad input, nothing was started: station file")


def test_a_run_past_its_max_runtime_is_stopped_and_recorded(bench, add, ledger, scheduler_at):
    add("long", "slow-step", bench(), "0 2 * * *", at(1), {"seconds": 60}, max_runtime_s=3.0)
    scheduler_at(at(1, 59)).run(until=at(3))
    ((status, reason),) = statuses(ledger)
    assert status == "aborted"
    assert "stopped by the scheduler after its max runtime of 3 s" in reason
    (run,) = ledger.runs()
    assert run["status"] == "aborted"  # the run itself ended cleanly, hardware safe


def test_the_queue_runs_when_no_gui_is_open_and_waits_while_one_is(
    bench, ledger, scheduler_at, lab_dirs
):
    from filelock import FileLock

    from labpnn.queue import RunQueue, processing_lock

    station = str(bench())
    queue = RunQueue(ledger)
    first = queue.add("night-measure", station, QUICK)
    second = queue.add("night-measure", station, {**QUICK, "steps": 3})
    gui = FileLock(str(lab_dirs[1] / "gui.lock"))  # a GUI window is open
    gui.acquire()
    scheduler_at(at(1)).run(until=at(1, 1))
    assert [e.state for e in queue.pending()] == ["queued", "queued"]
    gui.release()
    with processing_lock():  # `labpnn queue run` in a terminal is processing it
        scheduler_at(at(1, 2)).run(until=at(1, 3))
    assert [e.state for e in queue.pending()] == ["queued", "queued"]
    scheduler_at(at(1, 4), poll_s=1.0).run(until=at(1, 6))
    done = [queue.get(first.id), queue.get(second.id)]
    assert [e.state for e in done] == ["completed", "completed"]
    runs = [ledger.run(e.run_id) for e in done]
    assert [r["started_by"] for r in runs] == [f"queue:{first.id}", f"queue:{second.id}"]
    assert runs[0]["end_time"] <= runs[1]["start_time"]  # one after the other, in order


def test_failures_reach_the_command_hook_and_the_morning_summary_lists_them(
    bench, add, ledger, scheduler_at, tmp_path
):
    inbox = tmp_path / "inbox.jsonl"
    hook = tmp_path / "hook.py"
    hook.write_text(
        textwrap.dedent(f"""
        import sys
        with open({str(inbox)!r}, "a") as f:
            f.write(sys.stdin.read().replace("\\n", " ") + "\\n")
    """)
    )
    notifier = Notifier(
        NotifyConfig(command=[sys.executable, str(hook)], summary_cron="30 7 * * *")
    )
    add("ok", "night-measure", bench("night-a"), "0 2 * * *", at(1), QUICK)
    # The fake probe fails at a random step in 1..3, so "bad" must run 3 steps to fail every time.
    add("bad", "night-measure", bench("night-b", faults={"error": 1.0}), "0 3 * * *", at(1),
        {"steps": 3, "step_s": 0.0})  # fmt: skip
    scheduler_at(at(1, 30), notifier=notifier).run(until=at(8))
    events = [json.loads(line) for line in inbox.read_text().splitlines()]
    kinds = [(e["kind"], e["status"]) for e in events]
    assert kinds == [("firing", "failed"), ("summary", "summary")]
    assert events[0]["schedule"] == "bad" and "error -222" in events[0]["reason"]
    summary = events[1]
    assert summary["counts"] == {"completed": 1, "failed": 1}
    assert "bad" in summary["body"] and "error -222" in summary["body"]


def test_a_second_scheduler_on_the_same_state_dir_refuses_to_start(scheduler_at):
    from labpnn.errors import LabpnnError

    first = scheduler_at(at(1))
    first.acquire()
    with pytest.raises(LabpnnError, match="another labpnn scheduler is already running"):
        scheduler_at(at(1)).acquire()
    first.close()


def test_days_of_downtime_make_one_message_not_hundreds(bench, add, ledger, scheduler_at, tmp_path):
    inbox = tmp_path / "inbox.jsonl"
    hook = tmp_path / "hook.py"
    hook.write_text(f"import sys\nopen({str(inbox)!r}, 'a').write(sys.stdin.read() + '\\n')\n")
    notifier = Notifier(NotifyConfig(command=[sys.executable, str(hook)], summary_cron=None))
    add("hourly", "night-measure", bench(), "0 * * * *", at(0, 30), QUICK)
    scheduler_at(at(0, 5, day=3), notifier=notifier).run(until=at(0, 10, day=3))
    assert [f["status"] for f in firings(ledger)].count("missed") == 47
    (event,) = [json.loads(line) for line in inbox.read_text().splitlines()]
    assert event["count"] == 47
    assert event["subject"].startswith("hourly: 47 firings missed from 2030-01-01 01:00:00")


def test_a_run_deaf_to_sigint_is_killed_and_its_station_made_safe(bench, add, ledger, scheduler_at):
    station = bench()
    add("stuck", "stuck", station, "0 2 * * *", at(1), max_runtime_s=5.0)
    scheduler_at(at(1, 59), abort_grace_s=1.0).run(until=at(3))
    ((status, reason),) = statuses(ledger)
    assert status == "crashed"
    assert "after its max runtime of 5 s" in reason and "killed by signal 9" in reason
    state = station.parent / "night-optical.probe.state.json"
    assert json.loads(state.read_text()) == {"output": False}  # labpnn safe-off ran


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"cron": "0 2 31 2 *"}, "never fires"),
        ({"misfire_grace_s": float("nan")}, "--grace must be a finite number"),
        ({"lock_timeout_s": float("inf")}, "--lock-timeout must be a finite number"),
        ({"max_runtime_s": float("nan")}, "--max-runtime must be a finite number"),
    ],
)
def test_a_schedule_that_cannot_work_is_refused_when_added(bench, add, fields, message):
    from labpnn.errors import BadInput

    cron = fields.pop("cron", "0 2 * * *")
    with pytest.raises(BadInput, match=message):
        add("bad", "night-measure", bench(), cron, at(1), QUICK, **fields)


def test_one_schedule_that_cannot_fire_does_not_stop_the_others(bench, add, ledger, scheduler_at):
    station = bench()
    add("good", "night-measure", station, "0 2 * * *", at(1), QUICK)
    # stored before the check existed (or by hand): croniter finds no date for it
    add("feb31", "night-measure", station, "0 2 31 2 *", at(1), QUICK, check=False)
    scheduler_at(at(1, 59)).run(until=at(3))
    assert statuses(ledger, "good") == [("completed", "")]
    assert statuses(ledger, "feb31") == []
