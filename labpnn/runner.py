"""Run one procedure in this process: the single code path for CLI, GUI and scheduler.

Order matters, and every step before the run file exists is a *bad input* check
(exit 2, nothing written): procedure and parameters, station config, bench locks,
connection and instrument identities, parameter-vs-station validation, disk space.
Then the file and the ledger row are created, the procedure runs, and in a ``finally``
every instrument is made safe, the safe-state outcome and the end status are written
to the file, and the ledger row is closed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labpnn import __version__, paths
from labpnn.errors import (
    BadInput,
    BenchBusy,
    LabpnnError,
    RunAborted,
    WatchdogExpired,
)

EXIT_CODES = {"completed": 0, "failed": 1, "bad-input": 2, "missed": 3, "aborted": 130}
MIN_FREE_BYTES = 200 * 1024**2

log = logging.getLogger("labpnn.run")


@dataclass
class RunRequest:
    procedure: str
    station: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    station_set: list[str] = field(default_factory=list)
    data_dir: str | None = None
    note: str = ""
    tags: list[str] = field(default_factory=list)
    from_file: str | None = None
    resume_file: str | None = None
    dry_run: bool = False
    started_by: str = "cli"
    lock_timeout_s: float = 0.0
    show_progress: bool = True


@dataclass
class RunOutcome:
    status: str
    exit_code: int
    path: Path | None = None
    error: str = ""
    run_id: str = ""
    summary: dict[str, Any] = field(default_factory=dict)


def git_commit() -> str:
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return "unknown"
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=3,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def library_versions() -> dict[str, str]:
    from importlib import metadata

    out = {"labpnn": __version__, "python": sys.version.split()[0]}
    for dist in ("numpy", "h5py", "pymeasure", "qcodes", "torch", "pyvisa", "scikit-rf"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


# -- preparing ---------------------------------------------------------------------------
def build_procedure(req: RunRequest) -> tuple[Any, str]:
    """The procedure with validated parameters, and the station to run it on."""
    from labpnn.catalog import procedure_class
    from labpnn.storage import read_run

    params: dict[str, Any] = {}
    station = req.station
    procedure_name = req.procedure
    source = req.resume_file or req.from_file
    if source:
        try:
            previous = read_run(source, with_columns=False)
        except OSError as exc:
            raise BadInput(f"cannot read run file {source}: {exc}") from None
        procedure_name = procedure_name or previous.get("procedure", "")
        recorded = previous.get("parameters") or {}
        if req.resume_file:
            # A resume continues with the values the run actually used ("0 = the bench default"
            # resolved then), so a default changed since cannot change a resumed run.
            recorded = {**recorded, **(previous.get("effective_parameters") or {})}
        params.update(recorded)
        previous_run = {
            "path": str(Path(source).resolve()),
            "run_id": str(previous.get("run_id") or ""),
            "status": str(previous.get("status") or ""),
            "parameters": dict(recorded),
        }
        station = station or previous.get("station_source") or previous.get("station")
        if not req.station_set:  # resume and rerun on the same station overrides
            req.station_set = list(previous.get("station_set") or [])
    cls = procedure_class(procedure_name)
    procedure = cls()
    if source:
        procedure.previous_run = previous_run
    for key, value in params.items():
        if key in procedure._parameters:
            procedure.set_parameter(key, value)
    for key, value in req.params.items():
        procedure.set_parameter(key, value)
    station = station or getattr(cls, "default_station", None) or f"{cls.bench_kinds[0]}-sim"
    return procedure, station


class StopRequest(threading.Event):
    """Set when the operator asks a run to stop; ``cleaning`` once the run is ending.

    While it ends (safe state, end record, ledger) no signal may interrupt it: a second
    Ctrl-C there would leave the SLM showing a pattern and the file without its end record.
    Only a third Ctrl-C gets through, for a cleanup that hangs.
    """

    def __init__(self) -> None:
        super().__init__()
        self.cleaning = threading.Event()
        self.ignored = 0  # signals that arrived while cleaning


def _stop_flag() -> tuple[StopRequest, Callable[[], None]]:
    """SIGINT/SIGTERM ask the procedure to stop; a second SIGINT interrupts at once, except
    while the run is already ending."""
    stop = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        return stop, lambda: None

    def handler(signum: int, frame: Any) -> None:
        if stop.cleaning.is_set():
            stop.ignored += 1
            if stop.ignored >= 3 and signum == signal.SIGINT:  # a cleanup that hangs
                log.error("third Ctrl-C while ending: giving up; check the bench by hand")
                raise KeyboardInterrupt
            log.warning("already stopping: making the bench safe and closing the file; wait")
            return
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        log.warning("stop requested (signal %d); finishing the current step", signum)

    signals = [signal.SIGINT, signal.SIGTERM]
    if hasattr(signal, "SIGBREAK"):  # Windows: the GUI sends CTRL_BREAK_EVENT
        signals.append(signal.SIGBREAK)
    previous = {s: signal.getsignal(s) for s in signals}
    for sig in previous:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return stop, restore


class _FileLogHandler(logging.Handler):
    def __init__(self, writer: Any):
        super().__init__(logging.INFO)
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        if self.writer._closed:
            return
        with contextlib.suppress(Exception):
            self.writer.log(record.levelname, self.format(record))


class _Progress:
    """Terminal bar, ledger heartbeat and watchdog feed, from ``procedure.progress``."""

    def __init__(self, ledger: Any, run_id: str, show: bool, label: str):
        self.ledger, self.run_id = ledger, run_id
        self.last_beat = 0.0
        self.last_progress = time.monotonic()
        self.bar = None
        if show:
            from tqdm import tqdm

            self.bar = tqdm(
                total=100,
                desc=label,
                unit="%",
                file=sys.stderr,
                leave=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}",
            )

    def __call__(self, done: float, total: float, info: dict[str, Any]) -> None:
        self.last_progress = time.monotonic()
        fraction = 0.0 if not total else min(1.0, max(0.0, done / total))
        if self.bar is not None:
            self.bar.n = round(100 * fraction, 1)
            if info:
                self.bar.set_postfix(
                    {k: (f"{v:.3g}" if isinstance(v, float) else v) for k, v in info.items()},
                    refresh=False,
                )
            self.bar.refresh()
        now = time.time()
        if now - self.last_beat >= 1.0:
            self.last_beat = now
            with contextlib.suppress(Exception):
                self.ledger.update_run(self.run_id, heartbeat=now, progress=fraction)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _Watchdog(threading.Thread):
    """Fails a run that stops reporting progress for longer than its declared bound.

    A hung instrument call cannot be interrupted from another thread, so after asking
    the procedure to stop, the watchdog itself makes the hardware safe, records the
    failure and ends the process.
    """

    def __init__(self, progress: _Progress, bound_s: float, on_expire: Callable[[], None]):
        super().__init__(daemon=True, name="labpnn-watchdog")
        self.progress, self.bound_s, self.on_expire = progress, bound_s, on_expire
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(min(1.0, self.bound_s / 4)):
            if time.monotonic() - self.progress.last_progress > self.bound_s:
                self.on_expire()
                return


def preflight(procedure: Any, station: str, station_set: Any = ()) -> Any:
    """Everything that can be refused before connecting; the station config if none is.

    The one check behind runs, dry runs, queue entries, schedules and the GUI launcher:
    the station file (drivers, options, limits, settings), the layout, and the
    procedure's own rules (``check_station_config``: bench kind, roles, e.g. n_modes).
    """
    from labpnn.station import StationConfig

    config = StationConfig.load(station, list(station_set))
    config.check()
    procedure.check_station_config(config)
    if procedure.digital_only:
        # It measures nothing: it must not lock (or touch) the station's instruments, which
        # another run may be using.
        config = config.without_instruments()
    return config


def writable_data_dir(override: str | None) -> Path:
    """The data directory, checked writable before anything connects (else BadInput)."""
    import tempfile

    where = override or os.environ.get("LABPNN_DATA_DIR") or "the default data directory"
    try:
        data_dir = paths.data_dir(override)
        with tempfile.TemporaryFile(dir=data_dir, prefix=".labpnn-write-test-"):
            pass
    except OSError as exc:
        raise BadInput(
            f"cannot write run files to {where}: {exc.strerror or exc}; choose a writable "
            "directory with --data-dir or LABPNN_DATA_DIR"
        ) from None
    return data_dir


def _run_file_path(data_dir: Path, procedure: str, station: str, run_id: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return data_dir / time.strftime("%Y-%m-%d") / f"{stamp}_{procedure}_{station}_{run_id[:6]}.h5"


def execute(req: RunRequest, echo: Callable[[str], None] = print) -> RunOutcome:
    """Run a request to its end and return the outcome; never raises for lab errors."""
    from labpnn.ledger import Ledger

    try:
        ledger = Ledger()
        ledger.reap_crashed()
        procedure, station_name = build_procedure(req)
    except BadInput as exc:
        return RunOutcome("bad-input", 2, error=str(exc))
    try:
        # Signals mean "stop" from the very start, also while the station connects.
        stop, restore_signals = _stop_flag()
        try:
            return _execute(req, procedure, station_name, ledger, echo, stop)
        finally:
            restore_signals()
    finally:
        ledger.close()


def _execute(
    req: RunRequest, procedure: Any, station_name: str, ledger: Any, echo, stop: threading.Event
) -> RunOutcome:
    from labpnn.operator import Operator
    from labpnn.registry import CalibrationRegistry
    from labpnn.station import hold_locks

    try:
        # Before anything connects (a dry run too): a misspelt layout key, another bench
        # kind or n_modes that does not tile the SLM is bad input, not a failed run.
        config = preflight(procedure, station_name, req.station_set)
        if req.resume_file:
            # Before anything connects: a run file without a checkpoint, or a resume that
            # would change what the checkpoint was trained with, is bad input.
            from labpnn.storage import read_checkpoint

            procedure.resume_state = read_checkpoint(req.resume_file)
            if procedure.resume_state is None:
                raise BadInput(f"{req.resume_file} holds no checkpoint to resume from")
            procedure.station_config = config
            procedure.check_resume(procedure.previous_run)
    except BadInput as exc:
        return RunOutcome("bad-input", 2, error=str(exc))

    if req.dry_run:
        procedure.station_config = config
        est = procedure.estimate()
        echo(
            f"{procedure.name} on {config.name}: about {est.queries} hardware queries, "
            f"about {est.seconds:.1f} s{(' (' + est.note + ')') if est.note else ''}"
        )
        return RunOutcome("dry-run", 0)

    run_id = uuid.uuid4().hex[:12]
    run_lock = paths.state_dir() / "runs" / f"{run_id}.lock"
    run_lock.parent.mkdir(parents=True, exist_ok=True)
    station = None
    from labpnn.station import Station

    try:
        data_dir = writable_data_dir(req.data_dir)
        if shutil.disk_usage(data_dir).free < MIN_FREE_BYTES:
            raise BadInput(
                f"only {shutil.disk_usage(data_dir).free / 1e6:.0f} MB free in {data_dir}; "
                f"free some space (at least {MIN_FREE_BYTES / 1e6:.0f} MB) before a run"
            )
        station = Station(config)
        locks = {**station.lock_paths(), "__run__": run_lock}
        lock_ctx = hold_locks(locks, req.lock_timeout_s, config.name, stop.is_set)
        lock_ctx.__enter__()
    except RunAborted as exc:
        if station is not None:
            station.close()
        return RunOutcome("aborted", EXIT_CODES["aborted"], error=str(exc))
    except BenchBusy as exc:
        if station is not None:
            station.close()
        ledger.start_run(
            run_id=run_id,
            procedure=procedure.name,
            station=config.name,
            bench=config.bench.kind,
            parameters=procedure.parameter_values(),
            started_by=req.started_by,
            status="missed",
            error=str(exc),
            note=req.note,
            tags=req.tags,
        )
        ledger.end_run(run_id, "missed", str(exc))
        return RunOutcome("missed", EXIT_CODES["missed"], error=str(exc), run_id=run_id)
    except BadInput as exc:
        return RunOutcome("bad-input", 2, error=str(exc))

    writer = None
    try:
        try:
            station.connect()
            identities = station.check_identities()
            procedure.station = station
            procedure.station_config = config
            procedure.registry = CalibrationRegistry.for_station(ledger, station)
            procedure.operator = Operator.for_run(station, req.started_by)
            procedure.validate()
            snapshot = station.snapshot()
        except BadInput as exc:
            return RunOutcome("bad-input", 2, error=str(exc))
        except LabpnnError as exc:
            return RunOutcome("failed", 1, error=f"could not connect the station: {exc}")
        except Exception as exc:  # a driver bug or an SDK error we do not know yet
            return RunOutcome(
                "failed", 1, error=f"could not connect the station: {type(exc).__name__}: {exc}"
            )

        from labpnn.storage import RunWriter

        path = _run_file_path(data_dir, procedure.name, config.name, run_id)
        attrs = {
            "run_id": run_id,
            "procedure": procedure.name,
            "procedure_class": f"{type(procedure).__module__}.{type(procedure).__qualname__}",
            "parameters": procedure.parameter_values(),
            "station": config.name,
            "station_source": str(config.source) if config.source else config.name,
            "station_set": list(req.station_set),
            "station_snapshot": snapshot,
            "bench": config.bench.kind,
            "layout_hash": config.bench.layout_hash(),
            "simulated": config.simulated,
            "simulator_seed": config.seed if config.seed is not None else -1,
            "identities": identities,
            "labpnn_version": __version__,
            "versions": library_versions(),
            "git_commit": git_commit(),
            "host": socket.gethostname(),
            "started_by": req.started_by,
            "note": req.note,
            "tags": list(req.tags),
            "resumed_from": str(Path(req.resume_file).resolve()) if req.resume_file else "",
            "resumed_from_run_id": (procedure.previous_run or {}).get("run_id", "")
            if req.resume_file
            else "",
            "rerun_of": str(Path(req.from_file).resolve()) if req.from_file else "",
            "rerun_of_run_id": (procedure.previous_run or {}).get("run_id", "")
            if req.from_file
            else "",
        }
        writer = RunWriter(path, attrs)
        procedure.run = writer
        if os.environ.get("LABPNN_LIVE"):
            # A GUI started this run: publish thumbnails and curves on its loopback channel.
            from labpnn.live import attach_publisher

            attach_publisher(writer, station, os.environ["LABPNN_LIVE"], run_id)
        ledger.start_run(
            run_id=run_id,
            procedure=procedure.name,
            station=config.name,
            bench=config.bench.kind,
            parameters=procedure.parameter_values(),
            file=str(path.resolve()),
            started_by=req.started_by,
            lock_path=str(run_lock),
            note=req.note,
            tags=req.tags,
        )
        return _run_procedure(req, procedure, station, writer, ledger, run_id, path, echo, stop)
    finally:
        with contextlib.suppress(Exception):
            station.close()
        with contextlib.suppress(Exception):
            lock_ctx.__exit__(None, None, None)
        with contextlib.suppress(OSError):
            run_lock.unlink()


def _run_procedure(req, procedure, station, writer, ledger, run_id, path, echo, stop) -> RunOutcome:
    file_handler = _FileLogHandler(writer)
    file_handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    root = logging.getLogger("labpnn")
    root.addHandler(file_handler)
    progress = _Progress(ledger, run_id, req.show_progress, procedure.name)
    procedure._progress_hook = progress
    procedure.progress_bar_shown = progress.bar is not None
    procedure._stop_requested = stop.is_set
    from labpnn import live

    def feed_watchdog() -> None:
        progress.last_progress = time.monotonic()

    procedure._pause_check = lambda: live.hold_while_paused(run_id, stop.is_set, feed_watchdog)
    finished = threading.Event()
    expired = threading.Event()

    def watchdog_expired() -> None:
        if finished.is_set():
            return
        expired.set()
        message = (
            f"watchdog: no progress for {procedure.watchdog_s:g} s (the procedure's declared bound)"
        )
        log.error(message)
        stop.set()
        time.sleep(min(2.0, procedure.watchdog_s))
        if finished.is_set():
            return
        # The main thread is stuck in an instrument call: finish for it, then exit.
        safe = station.safe_state()
        message = _with_unsafe(message, station.name, safe, ledger, run_id)
        with contextlib.suppress(Exception):
            writer.finish("failed", message, safe_state=safe)
        with contextlib.suppress(Exception):
            ledger.end_run(run_id, "failed", message)
        echo(str(path))
        os._exit(EXIT_CODES["failed"])

    watchdog = _Watchdog(progress, procedure.watchdog_s, watchdog_expired)
    watchdog.start()
    status, error = "failed", ""
    log.info("run %s: %s on %s -> %s", run_id, procedure.name, station.name, path)
    try:
        procedure.startup()
        try:
            procedure.execute()
        finally:
            procedure.shutdown()
        status = "aborted" if stop.is_set() else "completed"
    except RunAborted as exc:
        # A procedure may say where a resume would continue ("stop requested" is the default).
        detail = str(exc) if str(exc) not in ("", "stop requested") else ""
        status, error = "aborted", "stopped by the operator" + (f"; {detail}" if detail else "")
    except KeyboardInterrupt:
        status, error = "aborted", "stopped by the operator"
    except WatchdogExpired as exc:
        status, error = "failed", f"watchdog: {exc}"
    except Exception as exc:  # a lab error or a bug: record it, keep the data
        status = "failed"
        # An error whose message is a full sentence says so (``explains_itself``); for the
        # others, the type name tells e.g. an instrument error from a lost device or a bug.
        explained = getattr(exc, "explains_itself", False)
        error = str(exc) if explained else f"{type(exc).__name__}: {exc}"
        # Into the run file only: the caller (the CLI) prints the outcome once.
        with contextlib.suppress(Exception):
            writer.log("ERROR", f"run failed: {error}")
            writer.log("ERROR", traceback.format_exc())
    finally:
        stop.cleaning.set()
        finished.set()
        watchdog.done.set()
        with contextlib.suppress(Exception):
            live.request_resume(run_id)
        progress.close()
        safe = station.safe_state()
        root.removeHandler(file_handler)
        if status == "failed" and not error:
            error = "failed"
        if stop.is_set() and status == "completed":
            status = "aborted"
        if expired.is_set():
            status, error = "failed", f"watchdog: no progress for {procedure.watchdog_s:g} s"
        if any(outcome != "ok" for outcome in safe.values()):
            # Data may be fine, but a bench left unsafe (RF on) must not read as a success.
            status = "failed" if status == "completed" else status
            error = _with_unsafe(error, station.name, safe, ledger, run_id)
        if "status" in writer._summary and writer._summary["status"] != status:
            # the runner has the last word on how a run ended (a watchdog, a late stop)
            with contextlib.suppress(Exception):
                writer.set_summary(status=status)
        try:
            writer.finish(status, error or None, safe_state=safe)
        except Exception as exc:  # e.g. the disk filled up: the ledger must still say why
            status = "failed"
            note = f"the end record could not be written ({type(exc).__name__}: {exc})"
            error = f"{error}; {note}" if error else note
            with contextlib.suppress(Exception):
                writer.close()
        ledger.end_run(run_id, status, error or None)
    summary = dict(writer._summary)
    return RunOutcome(status, EXIT_CODES[status], path, error, run_id, summary)


def _with_unsafe(error: str, station: str, safe: dict[str, str], ledger: Any, run_id: str) -> str:
    """``error`` with the instruments that did not confirm their safe state, which are also
    logged and recorded as an ``unsafe`` ledger event (unchanged when all are safe)."""
    unsafe = {role: outcome for role, outcome in safe.items() if outcome != "ok"}
    if not unsafe:
        return error
    for role, outcome in unsafe.items():
        log.error("safe state of '%s' %s", role, outcome)
    roles = "; ".join(f"{role}: {outcome}" for role, outcome in unsafe.items())
    warning = (
        f"the bench was NOT left safe ({roles}); check it by hand or run "
        f"`labpnn safe-off --station {station}`"
    )
    with contextlib.suppress(Exception):
        ledger.add_event(run_id, "unsafe", warning)
    return f"{error}; {warning}" if error else warning
