"""The run queue: an ordered list of runs to do, kept in the ledger so it outlives the GUI.

Why in the ledger: a queue typed into the GUI before going home must still be there
after the GUI is closed or crashes, and ``labpnn queue run`` must be able to work
through the same list without any GUI. One processor at a time (the GUI or a
terminal) holds the queue lock, so two processors never run entries out of order or
twice. An entry is never re-run automatically: if its processor died while starting
it, the entry is marked ``crashed`` and the operator decides.

Entry states use the run vocabulary: ``queued``, ``running``, then the run's final
status (``completed``, ``aborted``, ``failed``, ``crashed``, ``missed``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labpnn import paths
from labpnn.errors import BadInput, BenchBusy

EXIT_STATUS = {0: "completed", 1: "failed", 2: "failed", 3: "missed", 130: "aborted"}
EXTRA_COLUMNS = {"error": "TEXT", "started": "REAL", "ended": "REAL"}


@dataclass
class QueueEntry:
    id: int
    position: float
    procedure: str
    station: str
    parameters: dict[str, Any] = field(default_factory=dict)
    station_set: list[str] = field(default_factory=list)
    note: str = ""
    tags: list[str] = field(default_factory=list)
    state: str = "queued"
    run_id: str = ""
    added: float = 0.0
    error: str = ""

    def describe(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.parameters.items())
        return f"{self.procedure} on {self.station}" + (f" ({params})" if params else "")

    def command(self, started_by: str = "queue") -> list[str]:
        """The ``labpnn run`` command line of this entry."""
        return run_command(
            self.procedure,
            self.station,
            self.parameters,
            self.station_set,
            note=self.note,
            tags=self.tags,
            started_by=started_by,
        )


def run_command(
    procedure: str,
    station: str,
    parameters: dict[str, Any],
    station_set: list[str] | tuple[str, ...] = (),
    note: str = "",
    tags: list[str] | tuple[str, ...] = (),
    started_by: str = "cli",
) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "labpnn.cli",
        *run_args(procedure, station, parameters, station_set),
    ]
    if note:
        cmd += ["--note", note]
    for tag in tags:
        cmd += ["--tag", tag]
    return [*cmd, "--started-by", started_by, "--no-progress"]


def run_args(
    procedure: str,
    station: str,
    parameters: dict[str, Any],
    station_set: list[str] | tuple[str, ...] = (),
) -> list[str]:
    """``labpnn run`` arguments for a procedure, its parameters and station overrides."""
    args = ["run", procedure, "--station", station]
    for key, value in parameters.items():
        args += ["--set", f"{key}={format_value(value)}"]
    for assignment in station_set:
        args += ["--station-set", assignment]
    return args


def format_value(value: Any) -> str:
    """Text that the Procedure's parameter parses back to the same value."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def _row(row: Any) -> QueueEntry:
    d = dict(row)
    return QueueEntry(
        id=d["id"],
        position=d["position"],
        procedure=d["procedure"],
        station=d["station"],
        parameters=json.loads(d["parameters"] or "{}"),
        station_set=json.loads(d["station_set"] or "[]"),
        note=d["note"] or "",
        tags=json.loads(d["tags"] or "[]"),
        state=d["state"],
        run_id=d["run_id"] or "",
        added=d["added"] or 0.0,
        error=d.get("error") or "",
    )


class RunQueue:
    """The ``queue`` table of the ledger, as an ordered list with atomic claims."""

    def __init__(self, ledger: Any = None):
        from labpnn.ledger import Ledger

        self._own = ledger is None
        self.ledger = ledger or Ledger()
        self.db = self.ledger.db
        have = {r["name"] for r in self.db.execute("PRAGMA table_info(queue)")}
        for column, kind in EXTRA_COLUMNS.items():
            if column not in have:
                with contextlib.suppress(Exception):
                    self.db.execute(f"ALTER TABLE queue ADD COLUMN {column} {kind}")

    def close(self) -> None:
        if self._own:
            self.ledger.close()

    def __enter__(self) -> RunQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- editing ------------------------------------------------------------------
    def add(
        self,
        procedure: str,
        station: str,
        parameters: dict[str, Any] | None = None,
        station_set: list[str] | tuple[str, ...] = (),
        note: str = "",
        tags: list[str] | tuple[str, ...] = (),
        front: bool = False,
    ) -> QueueEntry:
        with self.ledger.transaction() as db:
            row = db.execute(
                "SELECT MIN(position) AS lo, MAX(position) AS hi FROM queue WHERE state='queued'"
            ).fetchone()
            if row["hi"] is None:
                position = 1.0
            else:
                position = row["lo"] - 1.0 if front else row["hi"] + 1.0
            cur = db.execute(
                "INSERT INTO queue (position, procedure, station, parameters, station_set, note,"
                " tags, state, added) VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?)",
                (
                    position,
                    procedure,
                    station,
                    json.dumps(parameters or {}, default=str),
                    json.dumps(list(station_set)),
                    note,
                    json.dumps(list(tags)),
                    time.time(),
                ),
            )
            entry_id = cur.lastrowid
        return self.get(entry_id)

    def get(self, entry_id: int) -> QueueEntry:
        row = self.db.execute("SELECT * FROM queue WHERE id = ?", (entry_id,)).fetchone()
        if row is None:
            raise BadInput(f"queue entry {entry_id} does not exist (see `labpnn queue list`)")
        return _row(row)

    def pending(self) -> list[QueueEntry]:
        """Running and queued entries, in the order they run."""
        rows = self.db.execute(
            "SELECT * FROM queue WHERE state IN ('running', 'queued') "
            "ORDER BY state = 'queued', position, id"
        )
        return [_row(r) for r in rows]

    def history(self, limit: int = 20) -> list[QueueEntry]:
        rows = self.db.execute(
            "SELECT * FROM queue WHERE state NOT IN ('running', 'queued') "
            "ORDER BY COALESCE(ended, added) DESC, id DESC LIMIT ?",
            (limit,),
        )
        return [_row(r) for r in rows]

    def remove(self, entry_id: int) -> None:
        with self.ledger.transaction() as db:
            row = db.execute("SELECT state FROM queue WHERE id = ?", (entry_id,)).fetchone()
            if row is None:
                raise BadInput(f"queue entry {entry_id} does not exist")
            if row["state"] == "running":
                raise BadInput(
                    f"queue entry {entry_id} is running; abort the run instead of removing it"
                )
            db.execute("DELETE FROM queue WHERE id = ?", (entry_id,))

    def move(self, entry_id: int, index: int) -> None:
        """Put a queued entry at ``index`` (0 = next to run) among the queued entries."""
        with self.ledger.transaction() as db:
            ids = [
                r["id"]
                for r in db.execute(
                    "SELECT id FROM queue WHERE state='queued' ORDER BY position, id"
                )
            ]
            if entry_id not in ids:
                raise BadInput(f"queue entry {entry_id} is not waiting in the queue")
            ids.remove(entry_id)
            ids.insert(max(0, min(index, len(ids))), entry_id)
            for pos, i in enumerate(ids, start=1):
                db.execute("UPDATE queue SET position = ? WHERE id = ?", (float(pos), i))

    def clear_history(self) -> None:
        with self.ledger.transaction() as db:
            db.execute("DELETE FROM queue WHERE state NOT IN ('running', 'queued')")

    # -- processing -----------------------------------------------------------------
    def claim_next(self) -> QueueEntry | None:
        """Atomically take the next queued entry and mark it ``running``."""
        with self.ledger.transaction() as db:
            row = db.execute(
                "SELECT * FROM queue WHERE state='queued' ORDER BY position, id LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE queue SET state='running', started=? WHERE id=?", (time.time(), row["id"])
            )
        return self.get(row["id"])

    def set_run_id(self, entry_id: int, run_id: str) -> None:
        with self.ledger.transaction() as db:
            db.execute("UPDATE queue SET run_id=? WHERE id=?", (run_id, entry_id))

    def finish(self, entry_id: int, status: str, run_id: str = "", error: str = "") -> None:
        with self.ledger.transaction() as db:
            db.execute(
                "UPDATE queue SET state=?, run_id=COALESCE(NULLIF(?, ''), run_id), error=?,"
                " ended=? WHERE id=?",
                (status, run_id, error, time.time(), entry_id),
            )

    def recover(self) -> list[QueueEntry]:
        """Settle entries left ``running`` by a processor that died (call with the lock)."""
        settled = []
        for entry in [e for e in self.pending() if e.state == "running"]:
            row = self.ledger.run(entry.run_id) if entry.run_id else None
            if row is not None and row["status"] == "running":
                continue  # its run outlived the processor and is still going
            if row is not None:
                self.finish(entry.id, row["status"], error=row["error"] or "")
            else:
                self.finish(
                    entry.id,
                    "crashed",
                    error=(
                        "the queue processor stopped while starting this entry; not re-run "
                        "automatically (check `labpnn` runs, then re-add it)"
                    ),
                )
            settled.append(self.get(entry.id))
        return settled


def recover_unattended(queue: RunQueue) -> list[QueueEntry]:
    """Settle entries left ``running`` when no processor holds the queue (else nothing).

    A GUI closed mid-run leaves its entry ``running`` after the run has ended; the next
    reader that finds the queue unattended settles it from the ledger instead of showing a
    stale state until someone starts the queue again.
    """
    try:
        with processing_lock(wait_s=0):
            return queue.recover()
    except BenchBusy:
        return []


def describe_settled(entry: QueueEntry) -> str:
    return f"queue entry [{entry.id}] settled as {entry.state}" + (
        f": {entry.error}" if entry.error else ""
    )


class GuiPresence:
    """Held while a GUI main window is open: the scheduler then leaves the queue to the GUI.

    A shared ``flock`` on ``STATE/gui.lock``, so every open window holds it and the scheduler's
    non-blocking exclusive probe (``scheduler.ticket_alive``) fails while any window is open;
    the kernel drops it when a window's process dies. On systems without ``flock`` the
    scheduler cannot see the GUI and runs the queue whenever it is free.
    """

    def __init__(self) -> None:
        self._fd: int | None = None
        if os.name != "posix":
            return
        import fcntl

        path = paths.state_dir() / "gui.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(str(path), os.O_RDWR | os.O_CREAT, 0o644)
        for _ in range(100):  # a scheduler's probe holds it exclusively for an instant
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                self._fd = fd
                return
            except OSError:
                time.sleep(0.01)
        os.close(fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None


def queue_lock_path() -> Path:
    folder = paths.state_dir() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "queue.lock"


# A processor waits this long for the lock: a reader that settles stale entries
# (``recover_unattended``) holds it for an instant, and must not make ``queue run`` fail.
PROCESSOR_LOCK_WAIT_S = 2.0


@contextlib.contextmanager
def processing_lock(wait_s: float = PROCESSOR_LOCK_WAIT_S) -> Iterator[None]:
    """Only one queue processor (GUI or terminal) at a time."""
    from filelock import FileLock, Timeout

    lock = FileLock(str(queue_lock_path()))
    try:
        lock.acquire(timeout=wait_s)
    except Timeout:
        raise BenchBusy(
            "the queue is already being processed (by a GUI or `labpnn queue run`); "
            "stop that one first"
        ) from None
    try:
        yield
    finally:
        lock.release()


def status_of_exit(code: int | None) -> str:
    if code is None:
        return "running"
    if code < 0:
        return "crashed"
    return EXIT_STATUS.get(code, "failed")


def run_id_for_output(stdout: str) -> tuple[str, str]:
    """(run_id, file) of a finished ``labpnn run`` from its last stdout line."""
    from labpnn.ledger import Ledger

    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not lines or not lines[-1].endswith(".h5"):
        return "", ""
    file = lines[-1]
    ledger = Ledger()
    try:
        row = ledger.run_for_file(file)
    finally:
        ledger.close()
    return (row["run_id"] if row else ""), file


def process_queue(
    echo: Callable[[str], None] = print,
    watch: bool = False,
    poll_s: float = 2.0,
) -> list[str]:
    """Run queued entries one after another as ``labpnn run`` children; headless.

    Returns the status of each entry processed, in order. Ctrl+C aborts the current run
    (the child gets the same SIGINT) and stops the processing; what is left stays queued.
    """
    done: list[str] = []
    with processing_lock(), RunQueue() as queue:
        for entry in queue.recover():
            echo(f"queue entry {entry.id} ({entry.describe()}) settled as {entry.state}")
        while True:
            entry = queue.claim_next()
            if entry is None:
                if not watch:
                    return done
                time.sleep(poll_s)
                continue
            echo(f"[{entry.id}] {entry.describe()}: starting")
            child = subprocess.Popen(
                entry.command("queue"),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=_child_env(),
            )
            interrupted = False
            while True:
                try:
                    out, err = child.communicate()
                    break
                except KeyboardInterrupt:  # the child got the same SIGINT from the terminal
                    interrupted = True
                    with contextlib.suppress(OSError):
                        child.send_signal(signal.SIGINT)
            status = status_of_exit(child.returncode)
            run_id, file = run_id_for_output(out)
            error = _last_error(err) if status != "completed" else ""
            queue.finish(entry.id, status, run_id, error)
            done.append(status)
            echo(
                f"[{entry.id}] {status}"
                + (f": {error}" if error else "")
                + (f"  {file}" if file else "")
            )
            if interrupted:
                echo("stopped by Ctrl+C; the rest of the queue stays queued")
                return done


def _last_error(stderr: str) -> str:
    for line in reversed(stderr.splitlines()):
        line = line.strip()
        if line.startswith("labpnn:"):
            return line.removeprefix("labpnn:").strip().removeprefix("error:").strip()
    lines = [x for x in stderr.splitlines() if x.strip()]
    return lines[-1].strip()[:300] if lines else ""


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.pop("LABPNN_LIVE", None)
    return env


def check_entry(
    procedure: str,
    station: str,
    parameters: dict[str, Any],
    station_set: list[str] | tuple[str, ...] = (),
) -> None:
    """Refuse, before it is queued, what ``labpnn run`` would refuse as bad input."""
    from labpnn.runner import RunRequest, build_procedure, preflight

    built, _ = build_procedure(
        RunRequest(
            procedure=procedure,
            station=station,
            params={k: format_value(v) for k, v in parameters.items()},
        )
    )
    preflight(built, station, station_set)
