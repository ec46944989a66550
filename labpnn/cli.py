"""The ``labpnn`` command line. Heavy libraries are imported inside each command."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Any

import click

from labpnn import __version__
from labpnn import cli_options as options


def _fail(message: str, code: int) -> None:
    click.echo(f"labpnn: error: {message}", err=True)
    sys.exit(code)


def _parse_sets(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            _fail(f"--set expects name=value, got '{pair}'", 2)
        out[key.strip()] = value
    return out


class LabGroup(click.Group):
    """Turns labpnn's own errors into one line and the right exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        from labpnn.errors import BadInput, LabpnnError

        try:
            return super().invoke(ctx)
        except BadInput as exc:
            _fail(str(exc), 2)
        except LabpnnError as exc:
            _fail(str(exc), 1)


@click.group(cls=LabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="labpnn")
@click.pass_context
def main(ctx: click.Context) -> None:
    """labpnn: run calibrations, training and control on physical neural-network benches.

    The same procedures run on real instruments and on the simulated lab; only the
    station config differs. Every run is its own process and writes one HDF5 file.
    """
    if ctx.invoked_subcommand in {"mock-server"}:
        return
    from labpnn.ledger import Ledger

    ledger = Ledger()
    try:
        for run_id in ledger.reap_crashed():
            click.echo(f"labpnn: run {run_id} had died; marked crashed in the ledger", err=True)
    finally:
        ledger.close()


# -- running --------------------------------------------------------------------------------
def _run_request(**kw: Any) -> None:
    import logging

    from labpnn.runner import execute

    logging.basicConfig(level=logging.INFO, format="labpnn: %(message)s", stream=sys.stderr)
    for noisy in ("pyvisa", "qcodes", "matplotlib", "PIL", "h5py"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    outcome = execute(**kw)
    if outcome.status == "bad-input":
        _fail(outcome.error, 2)
    if outcome.status == "dry-run":
        return
    if outcome.error:
        click.echo(f"labpnn: run {outcome.status}: {outcome.error}", err=True)
    else:
        click.echo(f"labpnn: run {outcome.status}", err=True)
    for key, value in outcome.summary.items():
        click.echo(
            f"  {key} = {value:.6g}" if isinstance(value, float) else f"  {key} = {value}", err=True
        )
    if outcome.path is not None:
        click.echo(str(outcome.path))
    sys.exit(outcome.exit_code)


@main.command()
@click.argument("procedure", required=False)
@click.option("--station", "station", help="Station file or bundled station name.")
@options.PARAMETERS
@options.STATION_OVERRIDES
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where the run file goes.")
@options.NOTE
@options.TAGS
@click.option(
    "--from",
    "from_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Rerun with the parameters of a previous run file.",
)
@click.option("--dry-run", is_flag=True, help="Estimate hardware queries and duration only.")
@click.option(
    "--lock-timeout",
    type=float,
    default=0.0,
    show_default=True,
    help="Seconds to wait for a busy bench before recording the run as missed.",
)
@click.option(
    "--started-by",
    default="cli",
    show_default=True,
    help="Who started the run, kept in the ledger (e.g. systemd:tm-nightly).",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def run(
    procedure,
    station,
    sets,
    station_sets,
    data_dir,
    note,
    tags,
    from_file,
    dry_run,
    lock_timeout,
    started_by,
    no_progress,
) -> None:
    """Run PROCEDURE; prints the run file's path as the last line.

    Exit codes: 0 completed, 1 failed, 2 bad input (nothing started), 3 missed (bench
    busy), 130 aborted.
    """
    from labpnn.runner import RunRequest

    if not procedure and not from_file:
        _fail("name a procedure (see `labpnn procedures`) or give --from RUN.h5", 2)
    _run_request(
        req=RunRequest(
            procedure=procedure or "",
            station=station,
            params=_parse_sets(sets),
            station_set=list(station_sets),
            data_dir=data_dir,
            note=note,
            tags=list(tags),
            from_file=from_file,
            dry_run=dry_run,
            started_by=started_by,
            lock_timeout_s=lock_timeout,
            show_progress=not no_progress,
        )
    )


@main.command()
@click.argument("run_file", type=click.Path(exists=True, dir_okay=False))
@options.PARAMETERS
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where the new run file goes.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def resume(run_file, sets, data_dir, no_progress) -> None:
    """Continue a crashed or aborted run from its last checkpoint, into a new run file."""
    from labpnn.runner import RunRequest

    _run_request(
        req=RunRequest(
            procedure="",
            params=_parse_sets(sets),
            resume_file=run_file,
            data_dir=data_dir,
            show_progress=not no_progress,
            started_by="resume",
        )
    )


# -- looking ---------------------------------------------------------------------------------
@main.command()
def procedures() -> None:
    """List the procedures with their parameters, units, defaults and limits."""
    from labpnn.catalog import all_procedures

    for name, cls in all_procedures().items():
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        kinds = "/".join(cls.bench_kinds) or "any"
        click.echo(f"{name}  [{kinds} bench]  {doc}")
        for key, spec in cls().parameter_specs().items():
            limits = ""
            lo, hi = getattr(spec, "minimum", None), getattr(spec, "maximum", None)
            if lo is not None or hi is not None:
                limits = f"  range {lo}..{hi}"
            if getattr(spec, "choices", None):
                limits = f"  one of {', '.join(map(str, spec.choices))}"
            units = f" {spec.units}" if getattr(spec, "units", None) else ""
            click.echo(f"    --set {key}=  default {spec.default}{units}{limits}  ({spec.name})")


@main.command()
def stations() -> None:
    """List the bundled station configs."""
    from labpnn import paths
    from labpnn.station import StationConfig

    for name, path in paths.bundled_stations().items():
        try:
            cfg = StationConfig.load(path)
            kind = "simulated" if cfg.simulated else "real"
            roles = ", ".join(cfg.instruments)
            click.echo(f"{name}  [{cfg.bench.kind}, {kind}]  {roles}   {path}")
        except Exception as exc:
            click.echo(f"{name}  [invalid: {exc}]   {path}")


@main.group()
def station() -> None:
    """Station configs."""


@station.command("check")
@click.argument("file")
@options.STATION_OVERRIDES
def station_check(file, station_sets) -> None:
    """Validate a station config; for real hardware, check the SDKs are installed."""
    from labpnn.bench import check_layout
    from labpnn.station import StationConfig

    cfg = StationConfig.load(file, station_sets)
    unavailable: list[str] = []
    notes = cfg.check(unavailable)
    check_layout(cfg.bench.kind, cfg.bench.layout)
    if cfg.simulated:
        # Build the simulated world and its drivers once, so a bad bench.simulation value is
        # found now rather than at 2 a.m. (without touching a persisted world's state).
        checked = StationConfig.load(file, [*station_sets, "bench.simulation.persist=false"])
        checked.connect().close()
        notes.append("simulated world and drivers built")
    for note in notes:
        click.echo(f"  {note}")
    if unavailable:
        for line in unavailable:
            click.echo(f"  NOT AVAILABLE here: {line}")
        _fail(
            f"station '{cfg.name}' is a valid config, but {len(unavailable)} instrument(s) "
            "cannot be used on this machine (above)",
            2,
        )
    click.echo(f"station '{cfg.name}' ({cfg.bench.kind} bench) is valid")


def _open_for_writing(path: str) -> bool:
    from labpnn.h5clear import status_flags

    try:
        return status_flags(path) != 0
    except Exception:  # not readable as HDF5: let repair say what it is
        return False


def _ledger_status(path: str) -> dict[str, Any] | None:
    from labpnn.ledger import Ledger

    ledger = Ledger()
    try:
        return ledger.run_for_file(path)
    finally:
        ledger.close()


@main.command()
@click.argument("run_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show(run_file, as_json) -> None:
    """Status, parameters and summary of a run (status from the ledger when newer)."""
    from labpnn.storage import read_run

    info = read_run(run_file, with_columns=False)
    row = _ledger_status(run_file)
    status = info.get("status")
    if row and row["status"] != status:
        status = row["status"]
    summary = dict(info.get("summary") or {})
    if summary.get("status") == "running" and status != "running":
        summary["status"] = status  # written by a writer that died before its end record
    out = {
        "file": str(run_file),
        "run_id": info.get("run_id"),
        "procedure": info.get("procedure"),
        "station": info.get("station"),
        "station_set": info.get("station_set") or [],
        "status": status,
        "file_status": info.get("status"),
        "error": info.get("error") or (row or {}).get("error") or "",
        "start_time": info.get("start_time"),
        "end_time": info.get("end_time", ""),
        "simulated": bool(info.get("simulated")),
        "simulator_seed": info.get("simulator_seed"),
        "parameters": info.get("parameters"),
        "effective_parameters": info.get("effective_parameters") or {},
        "summary": summary,
        "safe_state": info.get("safe_state"),
        "calibrations_used": info.get("calibrations_used") or {},
        "frames": {k: list(v) for k, v in info.get("frames", {}).items()},
        "traces": {k: list(v) for k, v in info.get("traces", {}).items()},
        "note": info.get("note", ""),
        "tags": info.get("tags", []),
        "labpnn_version": info.get("labpnn_version", ""),
        "git_commit": info.get("git_commit", ""),
    }
    if as_json:
        click.echo(json.dumps(out, indent=2, default=str))
        return
    click.echo(f"{out['procedure']} on {out['station']}: {status}")
    if out["error"]:
        click.echo(f"  error: {out['error']}")
    click.echo(f"  started {out['start_time']}  ended {out['end_time'] or '-'}")
    where = ["simulated" if out["simulated"] else "real instruments"]
    if out["simulated"] and out["simulator_seed"] not in (None, -1):
        where.append(f"seed {out['simulator_seed']}")
    where += [f"--station-set {item}" for item in out["station_set"]]
    click.echo(f"  bench: {', '.join(where)}")
    version = out["labpnn_version"] + (f" ({out['git_commit'][:10]})" if out["git_commit"] else "")
    if version:
        click.echo(f"  labpnn {version}")
    if out["note"] or out["tags"]:
        click.echo(f"  note: {out['note']}  tags: {', '.join(out['tags']) or '-'}")
    click.echo("  parameters:")
    effective = out["effective_parameters"]
    for k in {**(out["parameters"] or {}), **effective}:
        asked = (out["parameters"] or {}).get(k, "-")
        used = effective.get(k, asked)
        shown = f"{used}" if used == asked else f"{used}  (asked: {asked})"
        click.echo(f"    {k} = {shown}")
    safe = {k: v for k, v in (out["safe_state"] or {}).items() if k != "all_safe"}
    if safe:
        bad = {role: outcome for role, outcome in safe.items() if outcome != "ok"}
        click.echo(
            "  safe state at the end: "
            + ("all instruments ok" if not bad else "NOT SAFE, check by hand: ")
            + "; ".join(f"{role}: {outcome}" for role, outcome in bad.items())
        )
    for kind, cal in out["calibrations_used"].items():
        valid = "valid" if cal.get("valid_when_used") else "EXPIRED"
        click.echo(
            f"  uses {kind} calibration #{cal.get('registry_id')} of {cal.get('created')} "
            f"({valid} when used) from {cal.get('run_file') or '-'}"
        )
    if out["summary"]:
        click.echo("  summary:")
        for k, v in out["summary"].items():
            click.echo(f"    {k} = {v:.6g}" if isinstance(v, float) else f"    {k} = {v}")


@main.command()
@click.argument("run_file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--force",
    is_flag=True,
    help="Repair a file marked open for writing that this ledger does not know.",
)
def repair(run_file, force) -> None:
    """Rewrite a file whose writer died into a clean file with the ledger's status."""
    from labpnn.storage import TruncatedRunFile, UnreadableRunFile, read_run
    from labpnn.storage import repair as repair_file

    row = _ledger_status(run_file)
    status = row["status"] if row else "crashed"
    if status == "running":
        _fail(f"{run_file} belongs to a run that is still running", 2)
    try:
        info = read_run(run_file, with_columns=False)
    except TruncatedRunFile:
        raise
    except UnreadableRunFile:
        info = {}  # killed inside a structural change: exactly what repair is for
    if info.get("status") not in ("running", None) and info.get("status") == status:
        click.echo(f"{run_file} is already clean (status {status})")
        return
    if row is None and not force and _open_for_writing(run_file):
        # Only the writer's own machine knows whether it lives (its ledger and run lock);
        # replacing a live run's file would send the rest of the run nowhere.
        _fail(
            f"{run_file} is still marked open for writing and is not in this ledger: its run "
            "may still be writing it (on another machine, or with another LABPNN_STATE_DIR). "
            "Repair it from that run's machine, or use --force if you know its writer is dead",
            2,
        )
    repair_file(run_file, status, error=(row or {}).get("error") or "")
    click.echo(f"repaired {run_file}: status {status}")


@main.command()
@click.argument("run_file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-o",
    "output",
    type=click.Path(dir_okay=False),
    help="PNG to write (default: beside the run file, same name with .png).",
)
def report(run_file, output) -> None:
    """Plot a run: its procedure's report, or its result columns."""
    from labpnn.reports import make_report

    out = make_report(run_file, output)
    click.echo(str(out))


# -- instruments -------------------------------------------------------------------------------
@main.command("safe-off")
@click.option("--station", "station_name", required=True, help="Station file or name.")
@options.STATION_OVERRIDES
@click.option(
    "--wait",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to wait for a run on the station to stop (it makes the bench safe) and "
    "free the instruments.",
)
def safe_off(station_name, station_sets, wait) -> None:
    """Put every instrument of a station into its safe state (for ExecStopPost).

    A run still using the station is stopped first (as Ctrl-C would): it makes the bench
    safe as it ends and its file says it was aborted, instead of measuring on with the RF
    switched off under it and calling the result complete. The instruments' locks are then
    held while they are made safe, so no queued run starts on them in between.
    """
    from labpnn.errors import BenchBusy
    from labpnn.station import Station, StationConfig, hold_locks

    cfg = StationConfig.load(station_name, station_sets)
    _stop_runs_on(cfg.name)
    st = Station(cfg)
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(hold_locks(st.lock_paths(), wait, cfg.name))
        except BenchBusy:
            click.echo(
                f"  the instruments are still held after {wait:g} s (a GUI, or a run on "
                "another station file sharing them); making them safe anyway"
            )
        try:
            # every instrument that answers is made safe, even when another cannot be opened
            st.connect(best_effort=True)
            results = st.safe_state()
        finally:
            st.close()
    for role, why in st.unreachable.items():
        results[role] = f"NOT REACHED, check it by hand: {why}"
    bad = {r: o for r, o in results.items() if o != "ok"}
    for role, outcome in results.items():
        again = st.reopened.get(role)
        click.echo(f"  {role}: {outcome}" + (f" (after reconnecting: {again})" if again else ""))
    if bad:
        sys.exit(1)


def _stop_runs_on(station: str) -> None:
    """SIGINT each live run process on ``station`` that uses instruments, once."""
    import signal as _signal

    from labpnn.catalog import procedure_class
    from labpnn.ledger import Ledger

    def measures(procedure: str) -> bool:
        try:
            return not procedure_class(procedure).digital_only
        except Exception:  # a procedure this install does not know: assume it measures
            return True

    ledger = Ledger()
    try:
        live = [row for row in ledger.live_runs(station) if measures(row["procedure"])]
    finally:
        ledger.close()
    signalled = set()
    for row in live:
        pid = int(row["pid"])
        if pid in signalled:  # an inline recalibration shares its parent's process
            continue
        signalled.add(pid)
        click.echo(f"  stopping run {row['run_id']} ({row['procedure']}, pid {pid})")
        with contextlib.suppress(OSError):
            os.kill(pid, _signal.SIGINT)


@main.command("mock-server")
@click.argument("kind", type=click.Choice(["vna"]))
@click.option("--port", type=int, default=0, show_default=True, help="0 picks a free port.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
def mock_server(kind, port, seed, host) -> None:
    """Serve a simulated instrument standalone, for your own scripts."""
    from labpnn.mock_instruments.vna_server import serve_vna

    serve_vna(port=port, seed=seed, host=host)


@main.command()
@click.option("--station", "station_name", help="Station file or bundled name.")
def gui(station_name) -> None:
    """Open the main window."""
    from labpnn.gui.app import main as gui_main

    sys.exit(gui_main(station_name))


def _register_extensions() -> None:
    """Command groups that live beside the code they drive (cheap imports only)."""
    from labpnn.gui.cli import queue
    from labpnn.overnight_cli import register

    register(main)
    main.add_command(queue)


_register_extensions()

if __name__ == "__main__":  # pragma: no cover
    main()
