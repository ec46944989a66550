"""The scheduler daemon: fires schedules and runs the queue, and never loses a firing.

A small loop over croniter rather than APScheduler: every decision is a row in the
ledger, so the loop keeps no state that a ``kill -9`` could lose, and the clock is a
plain object that tests replace to run a week of nights in a minute.

Each firing is one ``labpnn run`` child process in its own session, so it outlives
the scheduler. Before starting it the scheduler takes an exclusive lock on a small
*ticket* file and hands the open descriptor to the child; the kernel keeps the lock
while the child lives and frees it when it dies, however it dies. A restarted
scheduler therefore knows, for every firing still marked ``running``, whether its run
is alive (leave it, watch it) or over (record its outcome from the run's ledger row).

Policy for firings due while the scheduler was not running (documented in
``docs/overnight.md``): at start, every due time since the last recorded firing gets
a row. The most recent one runs, once, if it is less than the schedule's
``misfire_grace_s`` late; all earlier ones are recorded ``missed`` with the reason
"the scheduler was not running", naming the firing they were coalesced into. A firing
whose previous run of the same schedule is still going is recorded ``missed`` too (at
most one run per schedule), and a run whose bench stays locked for longer than the
schedule's ``lock_timeout_s`` ends ``missed`` with "bench busy" (``labpnn run
--lock-timeout``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from labpnn import paths
from labpnn.errors import LabpnnError
from labpnn.ledger import Ledger
from labpnn.notify import Notifier, firing_event, summary_event
from labpnn.schedules import (
    FINAL_STATUSES,
    Schedule,
    due_times,
    get_schedule,
    last_due,
    list_schedules,
    local,
    next_due,
)

log = logging.getLogger("labpnn.scheduler")

ABORT_GRACE_S = 30.0  # after SIGINT, how long a run may take to stop before it is killed


# -- clocks ------------------------------------------------------------------------------
class SchedulerClock(Protocol):
    """Wall-clock (epoch) time as the scheduler sees it; tests inject a fake one."""

    def now(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def __init__(self, stop: threading.Event | None = None):
        self.stop = stop or threading.Event()

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.stop.wait(seconds)


class FakeClock:
    """Time that jumps: ``sleep`` advances it at once, plus a short real pause.

    The real pause (at most ``real_pause_s``) lets the child processes, which live in
    real time, make progress while the scheduler polls them.
    """

    def __init__(self, start: float, real_pause_s: float = 0.05):
        self.t = float(start)
        self.real_pause_s = real_pause_s

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.t += seconds
            time.sleep(min(seconds, self.real_pause_s))

    def advance(self, seconds: float) -> None:
        self.t += seconds


class ScaledClock:
    """Starts at ``start`` and runs ``speed`` times faster than the wall clock."""

    def __init__(self, start: float, speed: float = 1.0, stop: threading.Event | None = None):
        self.start, self.speed = float(start), float(speed)
        self.t0 = time.monotonic()
        self.stop = stop or threading.Event()

    def now(self) -> float:
        return self.start + (time.monotonic() - self.t0) * self.speed

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.stop.wait(seconds / self.speed)


# -- tickets: a lock the child holds for as long as it lives -------------------------------
def _hold_ticket(path: Path) -> int | None:
    """Lock ``path`` exclusively and return the descriptor to hand to the child.

    POSIX only (``flock`` follows the open file description into the child). On other
    systems the scheduler falls back to the run's own ledger row and lock.
    """
    if os.name != "posix":
        return None
    import fcntl

    fd = os.open(str(path), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def ticket_alive(path: str | None) -> bool:
    """Whether the process that was handed this ticket (or a copy of it) still lives."""
    if not path or not Path(path).exists():
        return False
    if os.name != "posix":
        return True  # no ticket on this system: wait for the run's own ledger row
    import fcntl

    fd = os.open(str(path), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


# -- what a finished child means -------------------------------------------------------------
def _log_reason(log_path: str | None) -> str:
    """The one-line error ``labpnn run`` printed last, if any."""
    if not log_path or not Path(log_path).exists():
        return ""
    with open(log_path, "rb") as f:
        f.seek(max(0, os.path.getsize(log_path) - 8192))
        lines = f.read().decode("utf-8", "replace").splitlines()
    for line in reversed(lines):
        for prefix in (
            "labpnn: error: ",
            "labpnn: run failed: ",
            "labpnn: run missed: ",
            "labpnn: run aborted: ",
            "labpnn: run crashed: ",
        ):
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
    tail = [line.strip() for line in lines if line.strip()][-1:]
    if tail and re.match(r"^[\w.]+(Error|Exception|Interrupt|Exit)\b", tail[0]):
        return f"uncaught {tail[0]}"  # a traceback: its last line names the error
    return ""


def outcome(rc: int | None, row: dict[str, Any] | None, log_reason: str) -> tuple[str, str]:
    """The firing's status and reason from the exit code, the run's row and its log."""
    if row and row["status"] in FINAL_STATUSES:
        reason = row["error"] or ""
        if rc is not None and rc < 0 and row["status"] == "crashed":
            reason = f"the run process was killed by signal {-rc}; {reason}"
        return row["status"], reason
    if row and row["status"] == "running":
        return "crashed", "the run process ended but its ledger row still says running"
    if rc is None:
        if log_reason:
            return "failed", log_reason
        return "crashed", (
            "the run process ended while the scheduler was down, without a ledger record"
        )
    if rc == 0:
        return "completed", ""
    if rc == 2:
        return "failed", f"bad input, nothing was started: {log_reason or 'see the log'}"
    if rc == 3:
        return "missed", log_reason or "bench busy"
    if rc == 130:
        return "aborted", log_reason or "stopped"
    if rc < 0:
        return "crashed", f"the run process was killed by signal {-rc} before it recorded a run"
    return "failed", log_reason or f"labpnn run exited with code {rc}"


@dataclass
class Launch:
    kind: str  # "firing" or "queue"
    key: int
    tag: str  # the run's --started-by
    station: str
    proc: subprocess.Popen | None
    lock_path: Path
    log_path: Path
    started_mono: float
    max_runtime_s: float | None = None
    interrupted_mono: float | None = None
    killed: bool = False
    note: str = ""  # added to the reason, e.g. "stopped after its max runtime"
    linked: bool = False  # a queue entry knows its run id
    pid: int | None = None  # a run an earlier scheduler process started (no Popen here)


def _signal(launch: Launch, sig: int) -> None:
    with contextlib.suppress(OSError, ProcessLookupError):
        if launch.proc is not None:
            launch.proc.send_signal(sig)
        elif launch.pid:
            os.kill(launch.pid, sig)


class Scheduler:
    """Fires due schedules, runs the queue when no GUI is open, records every outcome."""

    def __init__(
        self,
        clock: SchedulerClock | None = None,
        poll_s: float = 0.5,
        idle_s: float = 5.0,
        run_queue: bool = True,
        queue_lock_timeout_s: float = 600.0,
        notifier: Notifier | None = None,
        python: str | None = None,
        env: dict[str, str] | None = None,
        abort_grace_s: float = ABORT_GRACE_S,
    ):
        self.stop_event = threading.Event()
        self.clock = clock or SystemClock(self.stop_event)
        self.poll_s, self.idle_s = poll_s, idle_s
        self.run_queue = run_queue
        self.queue_lock_timeout_s = queue_lock_timeout_s
        self.notifier = notifier if notifier is not None else Notifier.from_state_dir()
        self.python = python or sys.executable
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.abort_grace_s = abort_grace_s
        self.host = socket.gethostname()
        self.folder = paths.state_dir() / "scheduler"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger()
        self.launches: dict[str, Launch] = {}
        self.orphans = 0  # runs started by an earlier scheduler process, still going
        # runs of an earlier scheduler process whose max runtime is kept: firing id -> launch
        self._orphan_limits: dict[int, Launch] = {}
        self._broken: dict[str, str] = {}  # schedules that cannot fire: name -> reason
        self.queue_done: list[dict[str, Any]] = []
        self._daemon_lock: Any = None
        self._queue_lock: Any = None

    # -- life cycle ------------------------------------------------------------------
    def acquire(self) -> None:
        """Only one scheduler per state directory: two would fire every schedule twice."""
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.folder / "daemon.lock"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise LabpnnError(
                f"another labpnn scheduler is already running for {paths.state_dir()}; "
                f"stop it first (systemctl stop labpnn-scheduler, or its process)"
            ) from None
        self._daemon_lock = lock

    def close(self) -> None:
        self._release_queue()
        if self._daemon_lock is not None:
            self._daemon_lock.release()
            self._daemon_lock = None
        self.ledger.close()

    def stop(self, *_: Any) -> None:
        """Stop the loop; running runs go on in their own processes and are not touched."""
        self.stop_event.set()

    def run(self, until: float | None = None, drain: bool = True) -> None:
        """Loop until stopped, or until the clock passes ``until`` (and runs ended)."""
        self.acquire()
        try:
            log.info("scheduler started (state dir %s)", paths.state_dir())
            while not self.stop_event.is_set():
                try:
                    wake = self.tick()
                except LabpnnError:
                    raise
                except Exception:  # a locked ledger, a full disk: log it, keep the lab going
                    log.exception("scheduler pass failed; trying again in %g s", self.idle_s)
                    wake = self.clock.now() + self.idle_s
                now = self.clock.now()
                if until is not None and now >= until and (not drain or not self.launches):
                    break
                limit = self.poll_s if (self.launches or self.orphans) else self.idle_s
                if until is not None:
                    wake = min(wake, max(until, now + 1e-3))
                self.clock.sleep(max(0.0, min(wake - now, limit)))
            log.info("scheduler stopped; %d run(s) still going on their own", len(self.launches))
        finally:
            self.close()

    # -- one pass ------------------------------------------------------------------------
    def tick(self) -> float:
        """Do everything due now; return the clock time of the next scheduled firing."""
        now = self.clock.now()
        self._collect()
        self._reconcile()
        self._enforce_runtime()
        wake = now + 24 * 3600
        for sched in list_schedules(self.ledger):
            try:
                self._fire(sched, now)
                wake = min(wake, next_due(sched.cron, now))
                self._broken.pop(sched.name, None)  # mended: a recurrence is logged again
            except Exception as exc:  # one broken schedule must not stop the others
                self._broken_schedule(sched, exc)
        if self.run_queue:
            self._link_queue_runs()
            self._run_queue()
        self._notify_pending()
        self._summary(now)
        return wake

    def _broken_schedule(self, sched: Schedule, exc: Exception) -> None:
        """Log a schedule that cannot fire (once per reason, not every pass)."""
        reason = f"{type(exc).__name__}: {exc}"
        if self._broken.get(sched.name) != reason:
            self._broken[sched.name] = reason
            log.error(
                "schedule '%s' cannot fire (%s); the other schedules go on. Fix or remove it: "
                "labpnn schedule remove %s", sched.name, reason, sched.name,
            )  # fmt: skip

    # -- firings --------------------------------------------------------------------------
    def _running_firing(self, name: str) -> dict[str, Any] | None:
        row = self.ledger.db.execute(
            "SELECT * FROM firings WHERE schedule = ? AND status = 'running' LIMIT 1", (name,)
        ).fetchone()
        return dict(row) if row else None

    def _fire(self, sched: Schedule, now: float) -> None:
        previous = last_due(self.ledger, sched.name)
        after = sched.created if previous is None else max(previous, sched.created)
        dues = due_times(sched.cron, after, now)
        if not dues:
            return
        latest = dues[-1]
        late_s = now - latest
        running = self._running_firing(sched.name)
        runs_latest = running is None and late_s <= sched.misfire_grace_s
        rows: list[tuple[float, str, str | None]] = []
        for due in dues[:-1]:
            reason = f"the scheduler was not running at {local(due)}"
            if runs_latest:
                reason += f"; coalesced into the firing due {local(latest)}"
            rows.append((due, "missed", reason))
        if running is not None:
            rows.append(
                (
                    latest,
                    "missed",
                    f"the previous firing of this schedule (due {local(running['due'])}) "
                    f"was still running",
                )
            )
        elif not runs_latest:
            rows.append(
                (
                    latest,
                    "missed",
                    f"the scheduler was not running at {local(latest)}; {late_s:.0f} s "
                    f"late is more than this schedule's grace of "
                    f"{sched.misfire_grace_s:g} s",
                )
            )
        firing_id = None
        with self.ledger.transaction() as db:
            for due, status, reason in rows:
                db.execute(
                    "INSERT OR IGNORE INTO firings (schedule, due, ended, status, reason, host) "
                    "VALUES (?,?,?,?,?,?)",
                    (sched.name, due, now, status, reason, self.host),
                )
            if runs_latest:
                cur = db.execute(
                    "INSERT OR IGNORE INTO firings (schedule, due, fired, status, host) "
                    "VALUES (?,?,?,'running',?)",
                    (sched.name, latest, now, self.host),
                )
                firing_id = cur.lastrowid if cur.rowcount else None
        if len(rows) > 3:
            log.warning(
                "%s: %d firings from %s to %s recorded missed (%s)",
                sched.name,
                len(rows),
                local(rows[0][0]),
                local(rows[-1][0]),
                rows[-1][2],
            )
        else:
            for due, _, reason in rows:
                log.warning("%s due %s: missed (%s)", sched.name, local(due), reason)
        if firing_id is not None:
            tag = f"schedule:{sched.name}#{firing_id}"
            self._launch(
                "firing", int(firing_id), tag, sched.station, sched.run_args(), sched.max_runtime_s
            )
            log.info("%s due %s: started (%s)", sched.name, local(latest), tag)

    # -- children ---------------------------------------------------------------------------
    def _launch(
        self,
        kind: str,
        key: int,
        tag: str,
        station: str,
        args: list[str],
        max_runtime_s: float | None = None,
    ) -> None:
        lock_path = self.folder / f"{kind}-{key}.lock"
        log_path = self.folder / f"{kind}-{key}.log"
        cmd = [self.python, "-m", "labpnn.cli", *args, "--started-by", tag]
        ticket = _hold_ticket(lock_path)
        popen_kw: dict[str, Any] = {}
        if os.name == "posix":
            popen_kw.update(start_new_session=True, pass_fds=(ticket,))
        else:
            popen_kw.update(creationflags=subprocess.CREATE_NEW_PROCESS_GROUP)
        try:
            with open(log_path, "ab") as out:
                out.write(f"$ {' '.join(cmd)}\n".encode())
                out.flush()
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=self.env,
                    **popen_kw,
                )
        except OSError as exc:
            self._record(kind, key, "failed", f"could not start labpnn run: {exc}", None)
            return
        finally:
            if ticket is not None:
                os.close(ticket)
        self.launches[f"{kind}:{key}"] = Launch(
            kind, key, tag, station, proc, lock_path, log_path, time.monotonic(), max_runtime_s
        )
        if kind == "firing":
            with self.ledger.transaction() as db:
                db.execute(
                    "UPDATE firings SET pid = ?, log_path = ?, lock_path = ? WHERE id = ?",
                    (proc.pid, str(log_path), str(lock_path), key),
                )

    def _collect(self) -> None:
        """Record the outcome of every child of this process that has ended."""
        for name, launch in list(self.launches.items()):
            rc = launch.proc.poll() if launch.proc is not None else None
            if rc is None:
                continue
            del self.launches[name]
            self._finish(launch.kind, launch.key, launch.tag, rc, str(launch.log_path), launch.note)
            with contextlib.suppress(OSError):
                launch.lock_path.unlink()

    def _reconcile(self) -> None:
        """Firings left ``running`` by an earlier scheduler: still alive, or over?"""
        rows = self.ledger.db.execute(
            "SELECT * FROM firings WHERE status = 'running' AND host = ?", (self.host,)
        ).fetchall()
        self.orphans = 0
        for row in rows:
            if f"firing:{row['id']}" in self.launches:
                continue
            lock_path = self.folder / f"firing-{row['id']}.lock"
            log_path = self.folder / f"firing-{row['id']}.log"
            tag = f"schedule:{row['schedule']}#{row['id']}"
            if self._orphan_alive(str(lock_path), row["pid"], tag):
                self.orphans += 1
                self._watch_orphan(row, tag, lock_path, log_path)
                continue  # its run goes on; look again next pass
            if not log_path.exists():
                self._record(
                    "firing",
                    row["id"],
                    "crashed",
                    "the scheduler stopped before it could start this run",
                    None,
                )
            else:
                watched = self._orphan_limits.pop(row["id"], None)
                note = watched.note if watched is not None else ""
                self._finish("firing", row["id"], tag, None, str(log_path), note)
            with contextlib.suppress(OSError):
                lock_path.unlink()
        for lock in self.folder.glob("queue-*.lock"):
            qid = int(lock.stem.split("-", 1)[1])
            if f"queue:{qid}" in self.launches:
                continue
            if self._orphan_alive(str(lock), None, f"queue:{qid}"):
                self.orphans += 1
                continue
            self._finish("queue", qid, f"queue:{qid}", None, str(lock.with_suffix(".log")), "")
            with contextlib.suppress(OSError):
                lock.unlink()

    def _watch_orphan(self, row: Any, tag: str, lock_path: Path, log_path: Path) -> None:
        """Keep ``max_runtime_s`` for a run an earlier scheduler process started.

        A scheduler restarted by systemd must not drop the limit of the night's run:
        :meth:`_enforce_runtime` treats it like its own launches, by pid.
        """
        if row["id"] in self._orphan_limits:
            return
        sched = get_schedule(self.ledger, row["schedule"])
        if sched is None or sched.max_runtime_s is None or not row["pid"] or not row["fired"]:
            return
        ran_s = max(0.0, self.clock.now() - float(row["fired"]))  # "fired" is on this clock
        self._orphan_limits[row["id"]] = Launch(
            kind="firing", key=row["id"], tag=tag, station=sched.station, proc=None,
            lock_path=lock_path, log_path=log_path, started_mono=time.monotonic() - ran_s,
            max_runtime_s=sched.max_runtime_s, pid=int(row["pid"]),
        )  # fmt: skip

    def _orphan_alive(self, lock_path: str, pid: int | None, tag: str) -> bool:
        """Whether a run started by an earlier scheduler process is still going."""
        if os.name == "posix":
            return ticket_alive(lock_path)
        runs = self.ledger.runs_started_by(tag)  # no inheritable ticket on this system
        if runs and runs[-1]["status"] != "running":
            return False
        try:
            import psutil
        except ImportError:
            return bool(runs)  # without psutil, only a run row can tell
        return pid is not None and psutil.pid_exists(pid)

    def _finish(
        self, kind: str, key: int, tag: str, rc: int | None, log_path: str | None, note: str
    ) -> None:
        runs = self.ledger.runs_started_by(tag)
        row = runs[-1] if runs else None
        if row and row["status"] == "running":
            self.ledger.reap_crashed()
            row = self.ledger.run(row["run_id"])
        status, reason = outcome(rc, row, _log_reason(log_path))
        if note:  # the scheduler stopped it (max runtime)
            if row is None and status in ("failed", "crashed"):
                status, reason = "aborted", ""  # stopped before it had started measuring
            reason = f"{note}; {reason}" if reason else note
        self._record(kind, key, status, reason, row["run_id"] if row else None)

    def _record(self, kind: str, key: int, status: str, reason: str, run_id: str | None) -> None:
        now = self.clock.now()
        if kind == "firing":
            with self.ledger.transaction() as db:
                db.execute(
                    "UPDATE firings SET status = ?, reason = ?, run_id = ?, ended = ? "
                    "WHERE id = ? AND status = 'running'",
                    (status, reason, run_id, now, key),
                )
            row = self.ledger.db.execute("SELECT * FROM firings WHERE id = ?", (key,)).fetchone()
            log.info(
                "%s due %s: %s%s",
                row["schedule"],
                local(row["due"]),
                status,
                f" ({reason})" if reason else "",
            )
        else:
            from labpnn.queue import RunQueue

            RunQueue(self.ledger).finish(key, status, run_id or "", reason)
            item = self.ledger.db.execute("SELECT * FROM queue WHERE id = ?", (key,)).fetchone()
            done = {**dict(item), "reason": reason} if item else {"id": key, "state": status}
            self.queue_done.append(done)
            if not any(x.kind == "queue" for x in self.launches.values()):
                self._release_queue()
            log.info("queue item %d: %s%s", key, status, f" ({reason})" if reason else "")
            if self.notifier.wants(status) and self.notifier.config.has_hooks:
                self.notifier.send(
                    {
                        "kind": "queue",
                        "status": status,
                        "reason": reason,
                        "run_id": run_id or "",
                        "subject": f"queue item {key}: {status}"
                        + (f" ({reason})" if reason else ""),
                    }
                )

    def _enforce_runtime(self) -> None:
        """A run past its schedule's ``max_runtime_s`` is stopped, then killed, then made safe."""
        for launch in [*self.launches.values(), *self._orphan_limits.values()]:
            if launch.max_runtime_s is None or (launch.proc is None and launch.pid is None):
                continue
            elapsed = time.monotonic() - launch.started_mono
            if launch.interrupted_mono is None and elapsed > launch.max_runtime_s:
                log.warning(
                    "%s ran for %.0f s, longer than its %g s: stopping it",
                    launch.tag,
                    elapsed,
                    launch.max_runtime_s,
                )
                launch.note = (
                    f"stopped by the scheduler after its max runtime of {launch.max_runtime_s:g} s"
                )
                launch.interrupted_mono = time.monotonic()
                _signal(launch, signal.SIGINT if os.name == "posix" else signal.CTRL_BREAK_EVENT)
            elif (
                launch.interrupted_mono is not None
                and not launch.killed
                and time.monotonic() - launch.interrupted_mono > self.abort_grace_s
            ):
                log.error(
                    "%s did not stop within %g s: killing it and making %s safe",
                    launch.tag,
                    self.abort_grace_s,
                    launch.station,
                )
                launch.killed = True
                if launch.proc is not None:
                    with contextlib.suppress(OSError):
                        launch.proc.kill()
                    launch.proc.wait(timeout=30)
                else:
                    _signal(launch, signal.SIGKILL if os.name == "posix" else signal.SIGTERM)
                self.safe_off(launch.station)

    def safe_off(self, station: str) -> None:
        """``labpnn safe-off`` for a station whose run had to be killed."""
        cmd = [self.python, "-m", "labpnn.cli", "safe-off", "--station", station]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=self.env)
            log.info("safe-off %s: exit %d %s", station, res.returncode, res.stdout.strip())
        except (OSError, subprocess.SubprocessError) as exc:
            log.error("safe-off %s failed: %s", station, exc)

    # -- the queue ---------------------------------------------------------------------------
    def gui_is_open(self) -> bool:
        """While a GUI window is open it owns the queue, even when it is not processing it.

        Every open main window holds a shared lock on ``STATE/gui.lock``
        (:class:`labpnn.queue.GuiPresence`); without ``flock`` the GUI cannot be seen.
        """
        return ticket_alive(str(paths.state_dir() / "gui.lock")) if os.name == "posix" else False

    def _hold_queue(self) -> bool:
        """Take the queue's processing lock (the GUI's "run queue" takes the same one) and
        keep it across ticks; False when a GUI or `labpnn queue run` is processing it."""
        if self._queue_lock is not None:
            return True
        from labpnn.errors import BenchBusy
        from labpnn.queue import processing_lock

        held = contextlib.ExitStack()
        try:
            held.enter_context(processing_lock(wait_s=0))
        except BenchBusy:
            return False
        self._queue_lock = held
        return True

    def _release_queue(self) -> None:
        if self._queue_lock is not None:
            self._queue_lock.close()
            self._queue_lock = None

    def _run_queue(self) -> None:
        """Start the next queued entry, one at a time, when no GUI owns the queue."""
        from labpnn.queue import RunQueue

        if any(self.folder.glob("queue-*.lock")):
            return  # one entry at a time, also one started before a restart
        if self.gui_is_open():
            self._release_queue()
            return
        queue = RunQueue(self.ledger)
        if not queue.pending() or not self._hold_queue():
            self._release_queue()
            return
        for entry in queue.recover():  # left running by a GUI that died
            log.warning("queue entry %d settled as %s: %s", entry.id, entry.state, entry.error)
        entry = queue.claim_next()
        if entry is None:
            self._release_queue()
            return
        args = entry.command(f"queue:{entry.id}")[3:]  # drop "python -m labpnn.cli"
        args += ["--lock-timeout", f"{self.queue_lock_timeout_s:g}"]
        self._launch("queue", entry.id, f"queue:{entry.id}", entry.station, args)
        log.info("queue entry %d: started %s", entry.id, entry.describe())

    def _link_queue_runs(self) -> None:
        """Give a running entry its run id as soon as the run exists (GUIs show it)."""
        from labpnn.queue import RunQueue

        for launch in self.launches.values():
            if launch.kind == "queue" and not launch.linked:
                runs = self.ledger.runs_started_by(launch.tag)
                if runs:
                    RunQueue(self.ledger).set_run_id(launch.key, runs[-1]["run_id"])
                    launch.linked = True

    # -- telling people ---------------------------------------------------------------------
    def _notify_pending(self) -> None:
        rows = self.ledger.db.execute(
            "SELECT f.*, s.procedure AS procedure, s.station AS station FROM firings f "
            "LEFT JOIN schedules s ON s.name = f.schedule "
            "WHERE f.notified = 0 AND f.status != 'running'"
        ).fetchall()
        groups: dict[tuple[str, str], list[Any]] = {}
        for row in rows:
            groups.setdefault((row["schedule"], row["status"]), []).append(row)
        for (name, status), group in groups.items():
            if self.notifier.wants(status) and self.notifier.config.has_hooks:
                last = dict(group[-1])
                event = firing_event(last, last["procedure"] or "", last["station"] or "")
                if len(group) > 3:  # e.g. a week of downtime: one message, not hundreds
                    event["subject"] = event["body"] = (
                        f"{name}: {len(group)} firings {status} from {local(group[0]['due'])} "
                        f"to {local(last['due'])} (last: {last['reason'] or status})"
                    )
                    event["count"] = len(group)
                self.notifier.send(event)
            with self.ledger.transaction() as db:
                db.executemany(
                    "UPDATE firings SET notified = 1 WHERE id = ?", [(row["id"],) for row in group]
                )

    def _summary(self, now: float) -> None:
        cron = self.notifier.config.summary_cron
        if not cron:
            return
        last = self.ledger.get_state("summary_last")
        if last is None:
            self.ledger.set_state("summary_last", repr(now))
            return
        since = float(last)
        if next_due(cron, since) > now:
            return
        rows = [
            dict(r)
            for r in self.ledger.db.execute(
                "SELECT * FROM firings WHERE status != 'running' AND due <= ? "
                "AND (due > ? OR ended > ?) ORDER BY due, id",
                (now, since, since),
            )
        ]
        event = summary_event(rows, self.queue_done, since, now)
        self.queue_done = []
        out = self.folder / f"summary-{time.strftime('%Y%m%d-%H%M', time.localtime(now))}.txt"
        out.write_text(event["body"] + "\n")
        event["file"] = str(out)
        log.info("%s", event["subject"])
        if self.notifier.config.has_hooks:
            self.notifier.send(event)
        self.ledger.set_state("summary_last", repr(now))


def run_daemon(clock: SchedulerClock | None = None, **kwargs: Any) -> None:
    """``labpnn scheduler``: run until SIGTERM or Ctrl-C."""
    scheduler = Scheduler(clock=clock, **kwargs)
    if clock is not None and hasattr(clock, "stop"):
        clock.stop = scheduler.stop_event
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, scheduler.stop)
        signal.signal(signal.SIGINT, scheduler.stop)
    scheduler.run()
