"""The ledger: one SQLite database in the state directory recording every run.

It is the authority on a run's status. A run whose process died cannot update its own
HDF5 file, so the ledger notices (the run's lock file is free although the row says
``running``) and marks it ``crashed`` at the next labpnn start. Later it also holds
the queue, the schedules and their firings, and the calibration registry.

Every write is one transaction in WAL mode with ``synchronous=FULL``, so a ``kill -9``
of any labpnn process leaves the database consistent.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from labpnn import paths
from labpnn.errors import ConfigError, LabpnnError

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    procedure TEXT NOT NULL,
    station TEXT,
    bench TEXT,
    parameters TEXT,
    file TEXT,
    started_by TEXT,
    pid INTEGER,
    host TEXT,
    lock_path TEXT,
    start_time REAL,
    end_time REAL,
    status TEXT NOT NULL,
    error TEXT,
    note TEXT,
    tags TEXT,
    heartbeat REAL,
    progress REAL
);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status);
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    position REAL NOT NULL,
    procedure TEXT NOT NULL,
    station TEXT NOT NULL,
    parameters TEXT,
    station_set TEXT,
    note TEXT,
    tags TEXT,
    state TEXT NOT NULL DEFAULT 'queued',
    run_id TEXT,
    added REAL,
    error TEXT,
    started REAL,
    ended REAL
);
CREATE TABLE IF NOT EXISTS calibrations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    station TEXT NOT NULL,
    bench TEXT NOT NULL,
    layout_hash TEXT NOT NULL,
    kind TEXT NOT NULL,
    created REAL NOT NULL,
    valid_until REAL,
    run_file TEXT,
    arrays_path TEXT,
    metrics TEXT
);
CREATE INDEX IF NOT EXISTS calibrations_key ON calibrations(station, bench, layout_hash, kind);
CREATE TABLE IF NOT EXISTS schedules (
    name TEXT PRIMARY KEY,
    procedure TEXT NOT NULL,
    station TEXT NOT NULL,
    parameters TEXT,
    station_set TEXT,
    cron TEXT NOT NULL,
    lock_timeout_s REAL NOT NULL,
    misfire_grace_s REAL NOT NULL,
    max_runtime_s REAL,
    created REAL NOT NULL,
    note TEXT
);
CREATE TABLE IF NOT EXISTS firings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule TEXT NOT NULL,
    due REAL NOT NULL,
    fired REAL,
    ended REAL,
    status TEXT NOT NULL,
    reason TEXT,
    run_id TEXT,
    pid INTEGER,
    host TEXT,
    log_path TEXT,
    lock_path TEXT,
    notified INTEGER NOT NULL DEFAULT 0,
    UNIQUE(schedule, due)
);
CREATE INDEX IF NOT EXISTS firings_status ON firings(status);
CREATE TABLE IF NOT EXISTS run_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    t REAL NOT NULL,
    kind TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS run_events_run ON run_events(run_id);
CREATE TABLE IF NOT EXISTS daemon_state (
    key TEXT PRIMARY KEY,
    value TEXT
);
"""


# How long a write waits for another labpnn process's transaction before giving up.
BUSY_TIMEOUT_S = 30.0


class LedgerBusy(LabpnnError):
    """Another labpnn process held the ledger's write lock for longer than the busy timeout."""


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in str(exc)


def ledger_path() -> Path:
    return paths.state_dir() / "ledger.sqlite"


class Ledger:
    def __init__(self, path: str | os.PathLike | None = None, timeout_s: float | None = None):
        self.path = Path(path) if path else ledger_path()
        self.timeout_s = BUSY_TIMEOUT_S if timeout_s is None else float(timeout_s)
        try:
            self.db = sqlite3.connect(
                str(self.path), timeout=self.timeout_s, isolation_level=None,
                check_same_thread=False,
            )  # fmt: skip
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.executescript(SCHEMA)
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                raise self._busy("opening it") from None
            raise self._not_a_ledger(exc) from None
        except sqlite3.DatabaseError as exc:
            raise self._not_a_ledger(exc) from None

    def _not_a_ledger(self, exc: Exception) -> ConfigError:
        return ConfigError(
            f"the ledger {self.path} is not a labpnn ledger database ({exc}); "
            f"move it away or point LABPNN_STATE_DIR elsewhere"
        )

    def _busy(self, what: str) -> LedgerBusy:
        return LedgerBusy(
            f"the ledger {self.path} stayed locked for {self.timeout_s:g} s while {what}: "
            "another labpnn process (a run, the scheduler or the GUI) is holding a write "
            "transaction open. Try again in a moment; if it stays locked, find the process "
            f"holding it (e.g. `fuser {self.path}`) and stop it"
        )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if _is_busy(exc):
                raise self._busy("starting a write") from None
            raise
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            try:
                self.db.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
                raise self._busy("committing a write (it was not recorded)") from None

    def close(self) -> None:
        self.db.close()

    # -- runs --------------------------------------------------------------------------
    def start_run(self, **fields: Any) -> None:
        fields.setdefault("host", socket.gethostname())
        fields.setdefault("pid", os.getpid())
        fields.setdefault("start_time", time.time())
        fields.setdefault("status", "running")
        for key in ("parameters", "tags"):
            if key in fields and not isinstance(fields[key], str):
                fields[key] = json.dumps(fields[key], default=str)
        cols = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        with self.transaction() as db:
            db.execute(f"INSERT INTO runs ({cols}) VALUES ({marks})", tuple(fields.values()))

    def update_run(self, run_id: str, **fields: Any) -> None:
        if not fields:
            return
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction() as db:
            db.execute(f"UPDATE runs SET {sets} WHERE run_id = ?", (*fields.values(), run_id))

    def end_run(self, run_id: str, status: str, error: str | None = None) -> None:
        self.update_run(run_id, status=status, error=error, end_time=time.time())

    def run(self, run_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return dict(row) if row else None

    def run_for_file(self, file: str | os.PathLike) -> dict[str, Any] | None:
        target = str(Path(file).resolve())
        row = self.db.execute(
            "SELECT * FROM runs WHERE file = ? ORDER BY start_time DESC LIMIT 1", (target,)
        ).fetchone()
        return dict(row) if row else None

    def runs(self, status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        if status:
            rows = self.db.execute(
                "SELECT * FROM runs WHERE status = ? ORDER BY start_time DESC LIMIT ?",
                (status, limit),
            )
        else:
            rows = self.db.execute("SELECT * FROM runs ORDER BY start_time DESC LIMIT ?", (limit,))
        return [dict(r) for r in rows]

    def _local_running(self) -> list[tuple[dict[str, Any], bool]]:
        """``running`` rows of this host that have a run lock, each with whether its process
        is alive: a live run process holds its run lock; the kernel frees it when it dies."""
        from filelock import FileLock, Timeout

        host, rows = socket.gethostname(), []
        for row in self.runs(status="running", limit=10_000):
            if row["host"] != host or not row["lock_path"]:
                continue
            lock = FileLock(row["lock_path"])
            try:
                lock.acquire(timeout=0)
            except Timeout:
                rows.append((row, True))
                continue
            lock.release()
            rows.append((row, False))
        return rows

    def live_runs(self, station: str | None = None) -> list[dict[str, Any]]:
        """``running`` rows of this host whose process is alive."""
        return [
            row
            for row, alive in self._local_running()
            if alive and row["pid"] and (station is None or row["station"] == station)
        ]

    def reap_crashed(self) -> list[str]:
        """Mark ``running`` rows of this host whose process died as ``crashed``."""
        crashed = []
        for row, alive in self._local_running():
            if alive:
                continue
            with contextlib.suppress(OSError):
                Path(row["lock_path"]).unlink()
            self.update_run(
                row["run_id"],
                status="crashed",
                end_time=time.time(),
                error=row["error"] or "the run process died without an end record",
            )
            crashed.append(row["run_id"])
            self._clear_file_flags(row["file"])
        return crashed

    @staticmethod
    def _clear_file_flags(file: str | None) -> None:
        """A writer killed while its file was briefly out of SWMR mode leaves it unopenable.

        Its process is dead (its run lock was free), so clearing the superblock's
        "open for write" flags, as ``h5clear -s`` would, is safe and makes the file
        readable again; see :mod:`labpnn.h5clear`.
        """
        if not file or not Path(file).exists():
            return
        from labpnn.h5clear import clear_status_flags

        with contextlib.suppress(OSError, ValueError):
            clear_status_flags(file)

    def runs_started_by(self, started_by: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT * FROM runs WHERE started_by = ? ORDER BY start_time", (started_by,)
        )
        return [dict(r) for r in rows]

    # -- events inside a run (retries, pauses): not statuses ---------------------------
    def add_event(self, run_id: str, kind: str, detail: str = "", t: float | None = None) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO run_events (run_id, t, kind, detail) VALUES (?,?,?,?)",
                (run_id, time.time() if t is None else t, kind, detail),
            )

    def events(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM run_events WHERE run_id = ? ORDER BY id", (run_id,))
        return [dict(r) for r in rows]

    # -- small persistent state of the scheduler daemon (last summary sent, ...) --------
    def get_state(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM daemon_state WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else default

    def set_state(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO daemon_state (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
