"""Command line for unattended operation: ``schedule``, ``scheduler`` and ``drift``.

Registered on the main ``labpnn`` group with ``main.add_command(...)``; also runnable
on its own as ``python -m labpnn.overnight_cli``. Each command turns labpnn's errors
into one line on stderr and the run vocabulary's exit codes (2 for bad input).
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

import click

from labpnn import cli_options as options


def _fail(message: str, code: int) -> None:
    click.echo(f"labpnn: error: {message}", err=True)
    sys.exit(code)


def lab_errors(fn: Callable) -> Callable:
    """One line and exit 2 for bad input, 1 for other lab errors (also outside ``main``)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from labpnn.errors import BadInput, LabpnnError

        try:
            return fn(*args, **kwargs)
        except BadInput as exc:
            _fail(str(exc), 2)
        except LabpnnError as exc:
            _fail(str(exc), 1)

    return wrapper


def _parse_sets(pairs: tuple[str, ...]) -> dict[str, str]:
    from labpnn.errors import BadInput

    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"--set expects name=value, got '{pair}'")
        out[key.strip()] = value
    return out


def _announce(sched: Any) -> None:
    from labpnn.schedules import local, next_due

    click.echo(
        f"schedule '{sched.name}': {sched.procedure} on {sched.station}, "
        f"cron '{sched.cron}', next at {local(next_due(sched.cron, sched.created))}"
    )


def _ledger():
    from labpnn.ledger import Ledger

    return Ledger()


# -- schedule ------------------------------------------------------------------------------
@click.group()
def schedule() -> None:
    """Recurring runs, e.g. the fibre TM at 02:00 every night (see `labpnn scheduler`)."""


@schedule.command("add")
@click.argument("name")
@click.option("--procedure", "procedure", required=True, help="Procedure to run.")
@click.option("--station", "station", required=True, help="Station file or bundled name.")
@options.PARAMETERS
@options.STATION_OVERRIDES
@click.option(
    "--cron", required=True, help="When, in local time: minute hour day-of-month month day-of-week."
)
@click.option(
    "--lock-timeout",
    type=float,
    default=600.0,
    show_default=True,
    help="Seconds to wait for a busy bench before recording the firing as missed.",
)
@click.option(
    "--grace",
    type=float,
    default=4 * 3600.0,
    show_default=True,
    help="Seconds late a firing may still start (e.g. after a reboot).",
)
@click.option(
    "--max-runtime",
    type=float,
    default=None,
    help="Stop (then kill and safe-off) a run that takes longer than this (s).",
)
@click.option("--note", default="", help="Free text kept with the schedule.")
@lab_errors
def schedule_add(
    name, procedure, station, sets, station_sets, cron, lock_timeout, grace, max_runtime, note
) -> None:
    """Add schedule NAME; it is checked now, as `labpnn run` would check it."""
    from labpnn.schedules import Schedule, add_schedule

    ledger = _ledger()
    try:
        sched = add_schedule(
            ledger,
            Schedule(
                name=name,
                procedure=procedure,
                station=station,
                cron=cron,
                parameters=_parse_sets(sets),
                station_set=list(station_sets),
                lock_timeout_s=lock_timeout,
                misfire_grace_s=grace,
                max_runtime_s=max_runtime,
                note=note,
            ),
        )
    finally:
        ledger.close()
    _announce(sched)


@schedule.command("list")
@lab_errors
def schedule_list() -> None:
    """The schedules, their next firing and how the last one ended."""
    import time

    from labpnn.schedules import list_schedules, schedule_status

    ledger = _ledger()
    try:
        scheds = list_schedules(ledger)
        if not scheds:
            click.echo("no schedules (add one with `labpnn schedule add`)")
        for s in scheds:
            params = " ".join(f"{k}={v}" for k, v in s.parameters.items())
            click.echo(
                f"{s.name}  '{s.cron}'  {s.procedure} on {s.station}"
                f"{'  ' + params if params else ''}"
            )
            upcoming, ended = schedule_status(ledger, s, time.time())
            click.echo(f"    next {upcoming}; {ended}")
    finally:
        ledger.close()


@schedule.command("edit")
@click.argument("name")
@click.option("--cron", default=None, help="New time, as for `schedule add`.")
@options.PARAMETERS
@click.option(
    "--unset", "unsets", multiple=True, metavar="NAME", help="Drop a parameter (repeatable)."
)
@click.option("--lock-timeout", type=float, default=None, help="New lock timeout (s).")
@click.option("--grace", type=float, default=None, help="New misfire grace (s).")
@click.option("--max-runtime", type=float, default=None, help="New run time limit (s).")
@click.option("--no-max-runtime", is_flag=True, help="Remove the run time limit.")
@click.option("--note", default=None, help="New note.")
@lab_errors
def schedule_edit(
    name, cron, sets, unsets, lock_timeout, grace, max_runtime, no_max_runtime, note
) -> None:
    """Change schedule NAME in place, checked as `schedule add` is; its history stays.

    The schedule counts from now: a new time that fell before this edit is not "missed".
    """
    from labpnn.errors import BadInput
    from labpnn.schedules import get_schedule, update_schedule

    if max_runtime is not None and no_max_runtime:
        raise BadInput("give --max-runtime or --no-max-runtime, not both")
    changes: dict[str, Any] = {
        key: value
        for key, value in (
            ("cron", cron),
            ("lock_timeout_s", lock_timeout),
            ("misfire_grace_s", grace),
            ("max_runtime_s", max_runtime),
            ("note", note),
        )
        if value is not None
    }
    if no_max_runtime:
        changes["max_runtime_s"] = None
    ledger = _ledger()
    try:
        if sets or unsets:
            current = get_schedule(ledger, name)
            parameters = {**(current.parameters if current else {}), **_parse_sets(sets)}
            missing = [key for key in unsets if key not in parameters]
            if current and missing:
                raise BadInput(f"schedule '{name}' has no parameter(s) {', '.join(missing)}")
            changes["parameters"] = {k: v for k, v in parameters.items() if k not in unsets}
        if not changes:
            raise BadInput("nothing to change: give --cron, --set, --unset, --max-runtime, ...")
        sched = update_schedule(ledger, name, **changes)
    finally:
        ledger.close()
    _announce(sched)


@schedule.command("remove")
@click.argument("name")
@lab_errors
def schedule_remove(name) -> None:
    """Remove schedule NAME; its past firings stay in the ledger."""
    from labpnn.schedules import remove_schedule

    ledger = _ledger()
    try:
        remove_schedule(ledger, name)
    finally:
        ledger.close()
    click.echo(f"removed schedule '{name}'")


@schedule.command("history")
@click.argument("name", required=False)
@click.option("--last", "last_n", type=int, default=30, show_default=True)
@lab_errors
def schedule_history(name, last_n) -> None:
    """Every firing (due time, outcome, reason, run), newest last."""
    from labpnn.schedules import firings, local

    ledger = _ledger()
    try:
        rows = firings(ledger, schedule=name)[-last_n:]
    finally:
        ledger.close()
    if not rows:
        click.echo(f"no firings yet{f' of {name}' if name else ''}")
    for f in rows:
        line = f"{local(f['due'])}  {f['schedule']:<24} {f['status']:<9}"
        if f["run_id"]:
            line += f" run {f['run_id']}"
        if f["reason"]:
            line += f"  {f['reason']}"
        click.echo(line)


# -- scheduler ------------------------------------------------------------------------------
@click.command("scheduler")
@click.option("--no-queue", is_flag=True, help="Do not run the persisted queue.")
@click.option(
    "--queue-lock-timeout",
    type=float,
    default=600.0,
    show_default=True,
    help="Seconds a queued run waits for a busy bench.",
)
@click.option("--poll", "poll_s", type=float, default=0.5, show_default=True, hidden=True)
@click.option("--idle", "idle_s", type=float, default=5.0, show_default=True, hidden=True)
@click.option(
    "--clock-start",
    type=float,
    default=None,
    hidden=True,
    help="Tests: start the scheduler's clock at this epoch time.",
)
@click.option(
    "--clock-speed",
    type=float,
    default=1.0,
    hidden=True,
    help="Tests: run the scheduler's clock this many times faster.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every decision.")
@lab_errors
def scheduler(
    no_queue, queue_lock_timeout, poll_s, idle_s, clock_start, clock_speed, verbose
) -> None:
    """Run the schedules and the queue until stopped (SIGTERM or Ctrl-C).

    Runs it started go on in their own processes when it stops; a restarted scheduler
    picks them up. For systemd units see docs/overnight.md.
    """
    from labpnn.scheduler import ScaledClock, run_daemon

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("labpnn.scheduler").setLevel(logging.INFO)
    logging.getLogger("labpnn.notify").setLevel(logging.INFO)
    clock = ScaledClock(clock_start, clock_speed) if clock_start is not None else None
    _ledger().close()  # a ledger that is not a database: one line, exit 2, before starting
    run_daemon(
        clock=clock,
        poll_s=poll_s,
        idle_s=idle_s,
        run_queue=not no_queue,
        queue_lock_timeout_s=queue_lock_timeout,
    )


# -- drift ---------------------------------------------------------------------------------
@click.command("drift")
@click.argument("bench")
@click.option(
    "-o",
    "output",
    type=click.Path(dir_okay=False),
    default=None,
    help="PNG to write (default: drift-BENCH.png).",
)
@lab_errors
def drift(bench, output) -> None:
    """Night-to-night drift of BENCH's calibrations (station name or file): table and plot."""
    from pathlib import Path

    from labpnn.drift import drift_report, plot_drift, registry_for, summary_lines

    ledger = _ledger()
    try:
        registry = registry_for(ledger, bench)
        report = drift_report(registry)
    finally:
        ledger.close()
    for line in summary_lines(report):
        click.echo(line)
    name = registry.key[0]
    out = plot_drift(
        report, f"{name} ({registry.key[1]} bench)", output or f"drift-{Path(name).stem}.png"
    )
    click.echo(str(out))


COMMANDS = (schedule, scheduler, drift)


def register(group: click.Group) -> None:
    """``register(main)`` adds every command of this module to the ``labpnn`` group."""
    for command in COMMANDS:
        group.add_command(command)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """labpnn overnight commands (also available as `labpnn schedule|scheduler|drift`)."""


register(cli)

if __name__ == "__main__":  # pragma: no cover
    cli()
