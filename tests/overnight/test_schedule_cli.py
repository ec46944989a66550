"""``labpnn schedule``: checked when added, listed, removed; bad input is one line, exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner

from labpnn.overnight_cli import cli


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_add_list_history_remove(bench):
    station = str(bench())
    res = invoke(
        "schedule",
        "add",
        "tm-nightly",
        "--procedure",
        "night-measure",
        "--station",
        station,
        "--set",
        "steps=3",
        "--cron",
        "0 2 * * *",
    )
    assert res.exit_code == 0, res.output
    assert "next at" in res.output and "02:00:00" in res.output
    listed = invoke("schedule", "list").output
    assert "tm-nightly  '0 2 * * *'  night-measure" in listed and "steps=3" in listed
    assert "never fired" in listed
    again = invoke(
        "schedule",
        "add",
        "tm-nightly",
        "--procedure",
        "night-measure",
        "--station",
        station,
        "--cron",
        "0 3 * * *",
    )
    assert again.exit_code == 2 and "already exists" in again.output
    assert invoke("schedule", "remove", "tm-nightly").exit_code == 0
    assert "no schedules" in invoke("schedule", "list").output
    gone = invoke("schedule", "remove", "tm-nightly")
    assert gone.exit_code == 2 and "no schedule named 'tm-nightly'" in gone.output


def test_edit_changes_a_schedule_in_place_and_refuses_what_add_refuses(bench, ledger):
    from labpnn.schedules import get_schedule

    station = str(bench())
    added = invoke(
        *("schedule", "add", "tm", "--procedure", "night-measure", "--station", station),
        *("--set", "steps=3", "--set", "step_s=0.01", "--cron", "0 2 * * *"),
    )
    assert added.exit_code == 0, added.output
    res = invoke(
        *("schedule", "edit", "tm", "--cron", "30 4 * * 1-5", "--set", "steps=5"),
        *("--unset", "step_s", "--max-runtime", "600"),
    )
    assert res.exit_code == 0, res.output
    assert "cron '30 4 * * 1-5'" in res.output and "04:30:00" in res.output
    sched = get_schedule(ledger, "tm")
    assert (sched.cron, sched.parameters, sched.max_runtime_s) == (
        "30 4 * * 1-5",
        {"steps": "5"},
        600,
    )
    assert invoke("schedule", "edit", "tm", "--no-max-runtime").exit_code == 0
    assert get_schedule(ledger, "tm").max_runtime_s is None
    for args, message in [
        (("--cron", "0 25 * * *"), "invalid cron expression"),
        (("--set", "steps=many"), "steps='many' is invalid"),
        (("--unset", "speed"), "has no parameter(s) speed"),
        (("--max-runtime", "nan"), "--max-runtime must be a finite number"),
        ((), "nothing to change"),
    ]:
        bad = invoke("schedule", "edit", "tm", *args)
        assert bad.exit_code == 2 and message in bad.output, (args, bad.output)
    assert get_schedule(ledger, "tm").cron == "30 4 * * 1-5"  # a refused edit changes nothing
    missing = invoke("schedule", "edit", "tm-weekly", "--cron", "0 2 * * *")
    assert missing.exit_code == 2 and "no schedule named 'tm-weekly'" in missing.output


@pytest.mark.parametrize(
    "change, message",
    [
        ({"--cron": "0 25 * * *"}, "invalid cron expression '0 25 * * *': use five fields"),
        ({"--cron": "every night"}, "invalid cron expression 'every night'"),
        ({"--procedure": "calibrate-everything"}, "unknown procedure 'calibrate-everything'"),
        ({"--station": "no-such-station"}, "unknown station 'no-such-station'"),
        ({"--set": "steps=many"}, "steps='many' is invalid"),
        ({"--set": "speed=3"}, "unknown parameter 'speed'"),
        ({"name": "tm nightly!"}, "schedule name 'tm nightly!' must be"),
    ],
)
def test_a_bad_schedule_is_refused_with_one_line_and_exit_code_2(bench, change, message):
    opts = {
        "name": "tm",
        "--procedure": "night-measure",
        "--station": str(bench()),
        "--cron": "0 2 * * *",
        **change,
    }
    args = ["schedule", "add", opts.pop("name")]
    for key, value in opts.items():
        args += [key, value]
    res = invoke(*args)
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("labpnn: error: "), res.output
    assert message in lines[0]


def test_a_procedure_for_another_bench_kind_is_refused(bench, monkeypatch):
    import labpnn.catalog
    from labpnn.procedure import LabProcedure

    class OpticalOnly(LabProcedure):
        name = "optical-only"
        bench_kinds = ("optical",)

    monkeypatch.setitem(labpnn.catalog.PROCEDURES, "optical-only", "x:y")
    monkeypatch.setattr(labpnn.catalog, "procedure_class", lambda name: OpticalOnly)
    res = invoke(
        "schedule",
        "add",
        "x",
        "--procedure",
        "optical-only",
        "--station",
        str(bench("mw", "microwave")),
        "--cron",
        "0 2 * * *",
    )
    assert res.exit_code == 2
    assert "runs on optical benches, but station 'mw' is a microwave bench" in res.output


@pytest.mark.parametrize("command", [["schedule", "list"], ["scheduler"], ["drift", "x"]])
def test_a_ledger_that_is_not_a_database_is_one_line_and_exit_2(lab_dirs, command):
    _, state = lab_dirs
    (state / "ledger.sqlite").write_text("these are my lab notes, not a database\n" * 100)
    res = subprocess.run(
        [sys.executable, "-m", "labpnn.overnight_cli", *command],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "is not a labpnn ledger database" in lines[0]
