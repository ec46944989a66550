"""Recurring runs: what to run, where, and when (a cron expression), kept in the ledger.

A schedule is checked completely when it is added (the cron expression, the
procedure and its parameters, the station), so a mistake shows up at the desk in the
afternoon rather than as a failed run at 02:00. Cron times are the machine's local
time. Every firing of a schedule gets one row in the ``firings`` table, keyed by
(schedule, due time): that key is what lets a restarted scheduler know, without
guessing, which firings it already handled.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labpnn.errors import BadInput
from labpnn.ledger import Ledger

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
DEFAULT_LOCK_TIMEOUT_S = 600.0  # how long a firing waits for a busy bench
DEFAULT_MISFIRE_GRACE_S = 4 * 3600.0  # how late a firing may still start
FINAL_STATUSES = ("completed", "failed", "aborted", "missed", "crashed")


@dataclass
class Schedule:
    name: str
    procedure: str
    station: str
    cron: str
    parameters: dict[str, str] = field(default_factory=dict)
    station_set: list[str] = field(default_factory=list)
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S
    misfire_grace_s: float = DEFAULT_MISFIRE_GRACE_S
    max_runtime_s: float | None = None
    created: float = 0.0
    note: str = ""

    @classmethod
    def from_row(cls, row: Any) -> Schedule:
        return cls(
            name=row["name"],
            procedure=row["procedure"],
            station=row["station"],
            cron=row["cron"],
            parameters=json.loads(row["parameters"] or "{}"),
            station_set=json.loads(row["station_set"] or "[]"),
            lock_timeout_s=row["lock_timeout_s"],
            misfire_grace_s=row["misfire_grace_s"],
            max_runtime_s=row["max_runtime_s"],
            created=row["created"],
            note=row["note"] or "",
        )

    def run_args(self) -> list[str]:
        """The ``labpnn run`` arguments of one firing (without --started-by)."""
        from labpnn.queue import run_args

        args = run_args(self.procedure, self.station, self.parameters, self.station_set)
        return [*args, "--lock-timeout", f"{self.lock_timeout_s:g}", "--no-progress"]


# -- cron --------------------------------------------------------------------------------
def check_cron(expr: str) -> str:
    """The expression, or a one-line BadInput saying what a cron expression looks like."""
    from croniter import croniter

    expr = " ".join(str(expr).split())
    fields = expr.split(" ")
    if not croniter.is_valid(expr) or (len(fields) != 5 and not expr.startswith("@")):
        raise BadInput(
            f"invalid cron expression '{expr}': use five fields, minute hour day-of-month "
            f"month day-of-week, e.g. '0 2 * * *' for 02:00 every night or '0 3 * * 0' "
            f"for 03:00 on Sundays"
        )
    try:
        next_due(expr, time.time())
    except Exception:  # croniter: no date matches (e.g. 31 February) within its search
        raise BadInput(
            f"cron expression '{expr}' never fires (no date matches it, e.g. 31 February)"
        ) from None
    return expr


def due_times(cron: str, after: float, until: float, limit: int = 100_000) -> list[float]:
    """Epoch times of the firings in (after, until], in the machine's local time zone."""
    from croniter import croniter

    start = _dt.datetime.fromtimestamp(after).astimezone()
    it = croniter(cron, start)
    out: list[float] = []
    while len(out) < limit:
        t = float(it.get_next(float))
        if t > until:
            break
        out.append(t)
    return out


def next_due(cron: str, after: float) -> float:
    from croniter import croniter

    return float(croniter(cron, _dt.datetime.fromtimestamp(after).astimezone()).get_next(float))


def local(t: float | None) -> str:
    """A firing time as people read it in the morning."""
    if t is None:
        return "-"
    return _dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")


# -- checking a schedule ---------------------------------------------------------------
def _station_ref(station: str) -> str:
    """A station file becomes an absolute path: the daemon does not share our cwd."""
    path = Path(station)
    if path.suffix in (".yaml", ".yml") or path.exists():
        return str(path.resolve())
    return station


def check_schedule(sched: Schedule) -> Schedule:
    """Validate everything a firing needs, exactly as ``labpnn run`` would."""
    from labpnn.catalog import procedure_class
    from labpnn.runner import preflight

    if not NAME_RE.match(sched.name):
        raise BadInput(
            f"schedule name '{sched.name}' must be 1-64 letters, digits, '_', '.' or '-', "
            f"starting with a letter or digit"
        )
    sched.cron = check_cron(sched.cron)
    for label, value in (
        ("--lock-timeout", sched.lock_timeout_s),
        ("--grace", sched.misfire_grace_s),
    ):
        if not (math.isfinite(value) and value >= 0):  # NaN compares False: say it, not store it
            raise BadInput(f"{label} must be a finite number of seconds ≥ 0, got {value:g}")
    limit = sched.max_runtime_s
    if limit is not None and not (math.isfinite(limit) and limit > 0):
        raise BadInput(
            f"--max-runtime must be a finite number of seconds > 0 (leave it out for no "
            f"limit), got {limit:g}"
        )
    try:
        cls = procedure_class(sched.procedure)
    except (ImportError, AttributeError) as exc:
        raise BadInput(f"procedure '{sched.procedure}' cannot be loaded here: {exc}") from None
    procedure = cls()
    for key, value in sched.parameters.items():
        procedure.set_parameter(key, value)
    sched.station = _station_ref(sched.station)
    preflight(procedure, sched.station, sched.station_set)
    return sched


# -- the table -----------------------------------------------------------------------------
COLUMNS = (
    "name",
    "procedure",
    "station",
    "parameters",
    "station_set",
    "cron",
    "lock_timeout_s",
    "misfire_grace_s",
    "max_runtime_s",
    "created",
    "note",
)


def _row(sched: Schedule) -> tuple:
    values = {
        **sched.__dict__,
        "parameters": json.dumps(sched.parameters),
        "station_set": json.dumps(sched.station_set),
    }
    return tuple(values[column] for column in COLUMNS)


def add_schedule(ledger: Ledger, sched: Schedule, check: bool = True) -> Schedule:
    if check:
        check_schedule(sched)
    sched.created = sched.created or time.time()
    import sqlite3

    try:
        with ledger.transaction() as db:
            db.execute(
                f"INSERT INTO schedules ({', '.join(COLUMNS)}) "
                f"VALUES ({', '.join('?' for _ in COLUMNS)})",
                _row(sched),
            )
    except sqlite3.IntegrityError:
        raise BadInput(
            f"a schedule named '{sched.name}' already exists; change it with "
            f"`labpnn schedule edit {sched.name}`, remove it first, or choose another name"
        ) from None
    return sched


def update_schedule(
    ledger: Ledger, name: str, now: float | None = None, **changes: Any
) -> Schedule:
    """Change schedule ``name`` in place, checked as when it was added; returns the new one.

    A new cron time counts from now (``created``): a time that fell between the last firing
    and this edit is not recorded as missed, since the schedule did not ask for it then.
    Other changes keep the schedule's firings as they were due.
    """
    import dataclasses

    current = get_schedule(ledger, name)
    if current is None:
        known = [s.name for s in list_schedules(ledger)]
        raise BadInput(f"no schedule named '{name}' (known: {', '.join(known) or 'none'})")
    if "name" in changes and changes["name"] != name:
        raise BadInput("a schedule cannot be renamed; add it under the new name instead")
    unknown = set(changes) - {f.name for f in dataclasses.fields(Schedule)} - {"name", "created"}
    if unknown:
        raise BadInput(f"a schedule cannot change {', '.join(sorted(unknown))}")
    sched = check_schedule(dataclasses.replace(current, **changes))
    if sched.cron != current.cron:  # firings due under the old time stay as they were
        sched.created = time.time() if now is None else now
    with ledger.transaction() as db:
        db.execute(
            f"UPDATE schedules SET {', '.join(f'{c} = ?' for c in COLUMNS[1:])} WHERE name = ?",
            (*_row(sched)[1:], name),
        )
    return sched


def remove_schedule(ledger: Ledger, name: str) -> None:
    """Forget a schedule; its past firings stay in the ledger as history."""
    with ledger.transaction() as db:
        cur = db.execute("DELETE FROM schedules WHERE name = ?", (name,))
        if cur.rowcount == 0:
            known = [r["name"] for r in db.execute("SELECT name FROM schedules ORDER BY name")]
            raise BadInput(f"no schedule named '{name}' (known: {', '.join(known) or 'none'})")


def list_schedules(ledger: Ledger) -> list[Schedule]:
    rows = ledger.db.execute("SELECT * FROM schedules ORDER BY name")
    return [Schedule.from_row(r) for r in rows]


def get_schedule(ledger: Ledger, name: str) -> Schedule | None:
    row = ledger.db.execute("SELECT * FROM schedules WHERE name = ?", (name,)).fetchone()
    return Schedule.from_row(row) if row else None


def last_due(ledger: Ledger, name: str) -> float | None:
    row = ledger.db.execute("SELECT MAX(due) AS d FROM firings WHERE schedule = ?", (name,))
    value = row.fetchone()["d"]
    return None if value is None else float(value)


def firings(
    ledger: Ledger, schedule: str | None = None, since: float | None = None, limit: int = 10_000
) -> list[dict[str, Any]]:
    """Firings, oldest first; ``since`` filters on the due time."""
    sql, args = "SELECT * FROM firings WHERE 1=1", []
    if schedule:
        sql += " AND schedule = ?"
        args.append(schedule)
    if since is not None:
        sql += " AND due > ?"
        args.append(since)
    sql += " ORDER BY due, id LIMIT ?"
    args.append(limit)
    return [dict(r) for r in ledger.db.execute(sql, args)]


def schedule_status(ledger: Ledger, sched: Schedule, now: float) -> tuple[str, str]:
    """(next firing, how the last one ended) as a person reads them: the CLI and the GUI."""
    try:
        upcoming = local(next_due(sched.cron, now))
    except Exception:  # stored before check_cron refused such expressions
        upcoming = "never (its cron matches no date; fix or remove it)"
    past = firings(ledger, schedule=sched.name)
    if not past:
        return upcoming, "never fired"
    last = past[-1]
    reason = f" ({last['reason']})" if last.get("reason") else ""
    return upcoming, f"last {local(last['due'])}: {last['status']}{reason}"
