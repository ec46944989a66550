"""``labpnn queue``: the GUI's run queue, edited and processed from a terminal.

The lead registers it with ``main.add_command(queue)`` in ``labpnn/cli.py``.
"""

from __future__ import annotations

import json
import sys

import click

from labpnn import cli_options as options


def _parse_sets(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expects name=value, got '{pair}'", param_hint="--set")
        out[key.strip()] = value
    return out


@click.group()
def queue() -> None:
    """The run queue shared with the GUI (kept in the ledger)."""


@queue.command("add")
@click.argument("procedure")
@click.option("--station", "station", required=True, help="Station file or bundled name.")
@options.PARAMETERS
@options.STATION_OVERRIDES
@options.NOTE
@options.TAGS
@click.option("--front", is_flag=True, help="Run it next, before the other queued entries.")
def add(procedure, station, sets, station_sets, note, tags, front) -> None:
    """Queue PROCEDURE on a station; checked now, run by the GUI or `labpnn queue run`."""
    from labpnn.queue import RunQueue, check_entry

    params = _parse_sets(sets)
    check_entry(procedure, station, params, station_sets)
    with RunQueue() as q:
        entry = q.add(procedure, station, params, list(station_sets), note, list(tags), front)
    click.echo(f"queued [{entry.id}] {entry.describe()}")


@queue.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also show finished entries.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(show_all, as_json) -> None:
    """The pending entries in the order they will run."""
    from dataclasses import asdict

    from labpnn.queue import RunQueue, describe_settled, recover_unattended

    with RunQueue() as q:
        for entry in recover_unattended(q):
            click.echo(describe_settled(entry), err=True)
        entries = q.pending() + (q.history(limit=50) if show_all else [])
    if as_json:
        click.echo(json.dumps([asdict(e) for e in entries], indent=2, default=str))
        return
    if not entries:
        click.echo("the queue is empty")
    for n, e in enumerate(entries, start=1):
        extra = f"  run {e.run_id}" if e.run_id else ""
        extra += f"  ({e.error})" if e.error else ""
        click.echo(f"{n:3d}. [{e.id}] {e.state:9s} {e.describe()}{extra}")


@queue.command("remove")
@click.argument("entry_ids", type=int, nargs=-1, required=True)
def remove(entry_ids) -> None:
    """Remove queued entries by their [id]."""
    from labpnn.queue import RunQueue

    with RunQueue() as q:
        for entry_id in entry_ids:
            q.remove(entry_id)
            click.echo(f"removed [{entry_id}]")


@queue.command("move")
@click.argument("entry_id", type=int)
@click.argument("position", type=int)
def move(entry_id, position) -> None:
    """Move entry [ENTRY_ID] to POSITION among the queued entries (1 = next)."""
    from labpnn.queue import RunQueue

    with RunQueue() as q:
        q.move(entry_id, position - 1)
        order = [e.id for e in q.pending() if e.state == "queued"]
    click.echo("queued order: " + " ".join(f"[{i}]" for i in order))


@queue.command("run")
@click.option("--watch", is_flag=True, help="Keep waiting for new entries (Ctrl+C stops).")
def run(watch) -> None:
    """Run the queued entries one after another, without a GUI.

    Exits 1 when any entry did not complete (failed, aborted, missed, crashed)."""
    from labpnn.queue import process_queue

    statuses = process_queue(echo=lambda s: click.echo(s, err=True), watch=watch)
    n = len(statuses)
    unsuccessful = [s for s in statuses if s != "completed"]
    click.echo(
        f"processed {n} entr{'y' if n == 1 else 'ies'}"
        + (f", {len(unsuccessful)} not completed" if unsuccessful else ""),
        err=True,
    )
    # a script or systemd unit running the queue learns that something needs a look
    sys.exit(1 if unsuccessful else 0)
