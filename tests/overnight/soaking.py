"""The soak: nights of schedules in compressed time, with faults, a busy GUI and restarts.

Shared by the suite (two nights) and ``scripts/soak.py`` (a week). Three fake benches
(optical, acoustic, microwave kinds) each get a nightly calibration and a nightly
check at the same minute (so they contend for the bench) and a weekly job. Every
run may draw a fault (transient timeouts, a hang, a crash, an instrument error, NaN
data). A "GUI" thread grabs a random bench's locks at random. The scheduler runs on a
fake clock in segments; at 02:00:20 every night (runs in flight) and at noon it
"dies" (its object is dropped, its runs go on, as after ``kill -9``) and a new one takes
over, at once or, at random, after a downtime of minutes to a day.

The checks: every due time of every schedule has exactly one firing with a final
status (and a reason unless completed), every run that was started is accounted
for and ended, no two users of a bench overlapped (from the instruments' own
journals), and every run file opens with h5py ``swmr=True``.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import h5py

from labpnn.ledger import Ledger
from labpnn.notify import Notifier, NotifyConfig
from labpnn.scheduler import FakeClock, Scheduler
from labpnn.schedules import (
    FINAL_STATUSES,
    Schedule,
    add_schedule,
    due_times,
    firings,
    list_schedules,
)
from labpnn.station import Station, StationConfig, hold_locks
from tests.overnight.fakebench import journal, station_yaml, subprocess_env

BENCHES = (
    ("night-optical", "optical"),
    ("night-acoustic", "acoustic"),
    ("night-microwave", "microwave"),
)
FAULTS = {"timeout": 0.15, "hang": 0.04, "crash": 0.06, "error": 0.04, "nan": 0.04}


@dataclass
class SoakReport:
    firings: int = 0
    by_status: Counter = field(default_factory=Counter)
    by_reason: Counter = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    overlaps: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    runs: int = 0
    run_files: int = 0
    retries: int = 0
    restarts: int = 0
    downtimes: int = 0
    gui_holds: int = 0
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.overlaps or self.unreadable)

    def lines(self) -> list[str]:
        out = [
            f"firings:             {self.firings}  "
            + ", ".join(f"{s} {n}" for s, n in sorted(self.by_status.items())),
            f"runs started:        {self.runs} ({self.run_files} run files, "
            f"{self.retries} recorded retries)",
            f"scheduler restarts:  {self.restarts} ({self.downtimes} after a downtime); "
            f"GUI bench holds: {self.gui_holds}",
            f"runs lost:           {len(self.lost)}",
            f"overlapping runs:    {len(self.overlaps)}",
            f"unreadable files:    {len(self.unreadable)}",
            "reasons:",
            *(f"  {n:3d} x {r}" for r, n in self.by_reason.most_common()),
            f"wall time: {self.wall_s:.0f} s",
        ]
        out += [f"  LOST: {x}" for x in self.lost]
        out += [f"  OVERLAP: {x}" for x in self.overlaps]
        out += [f"  UNREADABLE: {x}" for x in self.unreadable]
        return out


def _reason_class(status: str, reason: str) -> str:
    if status == "completed":
        return "completed"
    for key in (
        "bench busy",
        "watchdog",
        "killed by signal",
        "error -222",
        "NaN",
        "coalesced into",
        "grace of",
        "was still running",
        "bad input",
    ):
        if key in reason:
            return f"{status}: {key}"
    return f"{status}: {reason[:60]}"


class GuiHolder(threading.Thread):
    """Holds a random bench's locks for a random while, as an operator at the GUI would."""

    def __init__(
        self, stations: list[str], rng: random.Random, hold_s=(0.5, 8.0), rest_s=(0.5, 3.0)
    ):
        super().__init__(daemon=True, name="gui-holder")
        self.stations, self.rng = stations, rng
        self.hold_s, self.rest_s = hold_s, rest_s
        self.stop = threading.Event()
        self.holds: list[tuple[str, float, float]] = []  # station, start, end (wall time)

    def run(self) -> None:
        while not self.stop.wait(self.rng.uniform(*self.rest_s)):
            config = StationConfig.load(self.rng.choice(self.stations))
            probe = config.instruments.get("probe")
            journal_file = probe.options.get("journal_file") if probe else None
            try:
                with hold_locks(Station(config).lock_paths(), 0.5, "gui"):
                    journal(journal_file, config.name, "gui-hold-start")
                    start = time.time()
                    self.stop.wait(self.rng.uniform(*self.hold_s))
                    self.holds.append((config.name, start, time.time()))
                    journal(journal_file, config.name, "gui-hold-end")
            except Exception:
                continue  # a run has the bench: the GUI waits its turn


SIM_STATIONS = ("optical-sim", "acoustic-sim", "microwave-sim")


REAL_CALIBRATIONS = (  # the lab's own procedures on the simulated stations
    ("camera-optical-sim", "calibrate-camera", "optical-sim", "50 1 * * *", {}),
    ("tm-optical-sim", "calibrate-tm", "optical-sim", "0 2 * * *",
     {"n_modes": "64", "n_holdout": "4"}),
    ("focus-optical-sim", "validate-focus", "optical-sim", "40 2 * * *", {}),
    ("audio-acoustic-sim", "calibrate-audio", "acoustic-sim", "0 2 * * *", {}),
)  # fmt: skip


def setup(
    folder: Path, start: float, ledger: Ledger, faults: dict | None = None, sim: str = "light"
) -> list[Path]:
    """Schedules on the fake benches, and on the bundled simulated stations.

    ``sim``: "none"; "light" (a short run on each simulated station, and VNA sweeps
    with a hanging VNA every other night); "real" (that plus the lab's calibration
    procedures, each night).
    """
    if sim == "real":
        for name, procedure, station, cron, params in REAL_CALIBRATIONS:
            add_schedule(ledger, Schedule(name, procedure, station, cron, parameters=params,
                                          lock_timeout_s=60, created=start))  # fmt: skip
    if sim in ("light", "real"):
        for name in SIM_STATIONS:
            add_schedule(
                ledger,
                Schedule(
                    f"touch-{name}", "touch", name, "30 2 * * *", lock_timeout_s=6, created=start
                ),
            )
        add_schedule(
            ledger,
            Schedule(
                "sweeps-microwave-sim",
                "vna-sweeps",
                "microwave-sim",
                "30 2 */2 * *",
                parameters={"sweeps": "20"},
                lock_timeout_s=6,
                created=start,
                station_set=["bench.simulation.faults.vna_hang_after_sweeps=3"],
            ),
        )
    stations = []
    for name, kind in BENCHES:
        station = station_yaml(folder, name, kind, faults if faults is not None else FAULTS)
        stations.append(station)
        quick = {"steps": "3", "step_s": "0.05"}
        for sched in (
            Schedule(
                f"cal-{kind}",
                "night-measure",
                str(station),
                "0 2 * * *",
                parameters=quick,
                lock_timeout_s=6,
                created=start,
            ),
            Schedule(
                f"check-{kind}",
                "slow-step",
                str(station),
                "0 2 * * *",
                parameters={"seconds": "0.5"},
                lock_timeout_s=3,
                created=start,
            ),
            Schedule(
                f"weekly-{kind}",
                "night-measure",
                str(station),
                "0 3 * * 0",
                parameters=quick,
                lock_timeout_s=6,
                created=start,
            ),
        ):
            add_schedule(ledger, sched)
    return stations


def soak(
    folder: Path,
    nights: int,
    seed: int = 0,
    restart_p: float = 0.25,
    sim: str = "light",
    progress=None,
) -> SoakReport:
    """Run the soak in the current state/data directories; return the counts."""
    t0 = time.monotonic()
    rng = random.Random(seed)
    report = SoakReport()
    start = dt.datetime(2030, 1, 6, 12, 0).timestamp()  # a Sunday noon
    end = start + nights * 86400
    ledger = Ledger()
    stations = setup(folder, start, ledger, sim=sim)
    sims = list(SIM_STATIONS) if sim != "none" else []
    gui = GuiHolder([str(p) for p in stations] + sims, rng)
    gui.start()
    clock = FakeClock(start)
    notifier = Notifier(NotifyConfig(summary_cron=None))
    # The scheduler stops at 02:00:20 every night, with that night's runs in flight (as a
    # kill -9 would leave them), and at noon; a new one takes over, at once or after a
    # downtime: short at night (its runs finish meanwhile), up to a day at noon.
    first_day = dt.datetime.fromtimestamp(start).replace(hour=0, minute=0)
    boundaries = sorted(
        t
        for d in range(nights + 1)
        for t in (
            (first_day + dt.timedelta(days=d, hours=2, seconds=20)).timestamp(),
            (first_day + dt.timedelta(days=d, hours=12)).timestamp(),
        )
        if start < t < end
    ) + [end]
    try:
        for boundary in boundaries:
            if clock.now() >= boundary:
                continue  # a downtime ran past it
            scheduler = Scheduler(
                clock=clock, poll_s=1.0, idle_s=3600.0, notifier=notifier, env=subprocess_env()
            )
            scheduler.run(until=boundary, drain=False)
            report.restarts += 1
            if progress is not None:
                progress(clock.now(), start, end)
            if clock.now() < end and rng.random() < restart_p:
                report.downtimes += 1
                night = dt.datetime.fromtimestamp(clock.now()).hour < 6
                clock.advance(rng.uniform(0.05, 1.5 if night else 30) * 3600)
        final = Scheduler(
            clock=clock, poll_s=1.0, idle_s=3600.0, notifier=notifier, env=subprocess_env()
        )
        final.run(until=clock.now(), drain=True)
        # runs orphaned by a "killed" scheduler may still be going: let a scheduler see them end
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and any(
            f["status"] == "running" for f in firings(ledger)
        ):
            time.sleep(0.5)
            Scheduler(clock=clock, notifier=notifier, env=subprocess_env()).run(
                until=clock.now(), drain=True
            )
    finally:
        gui.stop.set()
        gui.join()
    report.gui_holds = len(gui.holds)
    check(report, ledger, stations, end)
    report.overlaps += ledger_overlaps(ledger, sims, gui.holds)
    ledger.close()
    report.wall_s = time.monotonic() - t0
    return report


def check(report: SoakReport, ledger: Ledger, stations: list[Path], end: float) -> None:
    rows = firings(ledger)
    report.firings = len(rows)
    seen = Counter((f["schedule"], f["due"]) for f in rows)
    for sched in list_schedules(ledger):
        for due in due_times(sched.cron, sched.created, end):
            if seen[(sched.name, due)] != 1:
                report.lost.append(f"{sched.name} due {due}: {seen[(sched.name, due)]} rows")
    for f in rows:
        report.by_status[f["status"]] += 1
        report.by_reason[_reason_class(f["status"], f["reason"] or "")] += 1
        if f["status"] not in FINAL_STATUSES:
            report.lost.append(f"{f['schedule']} due {f['due']}: still {f['status']}")
        elif f["status"] != "completed" and not f["reason"]:
            report.lost.append(f"{f['schedule']} due {f['due']}: {f['status']} without reason")
        if f["run_id"]:
            run = ledger.run(f["run_id"])
            if run is None or run["status"] != f["status"]:
                report.lost.append(
                    f"firing {f['id']}: run {f['run_id']} is "
                    f"{run and run['status']}, firing says {f['status']}"
                )
    runs = [r for r in ledger.runs(limit=100_000) if r["started_by"].startswith("schedule:")]
    report.runs = len(runs)
    linked = {f["run_id"] for f in rows if f["run_id"]}
    for run in runs:
        if run["run_id"] not in linked:
            report.lost.append(f"run {run['run_id']} ({run['started_by']}) has no firing")
        if run["status"] not in FINAL_STATUSES:
            report.lost.append(f"run {run['run_id']} still {run['status']}")
        report.retries += len([e for e in ledger.events(run["run_id"]) if e["kind"] == "retry"])
        if run["file"]:
            report.run_files += 1
            try:
                with h5py.File(run["file"], "r", libver="latest", swmr=True) as h5:
                    h5.attrs["status"]
            except Exception as exc:
                report.unreadable.append(f"{run['file']}: {type(exc).__name__}: {exc}")
    for station in stations:
        report.overlaps += bench_overlaps(station.parent / f"{station.stem}.journal")


def bench_overlaps(journal_path: Path) -> list[str]:
    """Users of one bench (run processes, GUI holds) whose use intervals overlap."""
    if not journal_path.exists():
        return []
    spans: dict[str, list[float]] = {}
    gui_start = None
    gui_n = 0
    for line in journal_path.read_text().splitlines():
        t, _, pid, event, *_ = line.split()
        if event == "gui-hold-start":
            gui_start = float(t)
        elif event == "gui-hold-end" and gui_start is not None:
            gui_n += 1
            spans[f"gui#{gui_n}"] = [gui_start, float(t)]
        else:
            spans.setdefault(f"run pid {pid}", []).append(float(t))
    intervals = sorted((min(ts), max(ts), who) for who, ts in spans.items())
    found = []
    latest_end, owner = float("-inf"), ""
    for s, e, who in intervals:
        if s < latest_end:
            found.append(f"{journal_path.stem}: {owner} and {who} overlap at {s:.3f}")
        if e > latest_end:
            latest_end, owner = e, who
    return found


def ledger_overlaps(ledger: Ledger, names, gui_holds) -> list[str]:
    """For benches without a journal: run rows' [start, end] (taken under the bench
    locks) and the GUI's holds must not overlap. Crashed rows are left out: their end
    time is when the crash was noticed, not when the process died."""
    found = []
    for name in names:
        intervals = [
            (r["start_time"], r["end_time"], f"run {r['run_id']}")
            for r in ledger.runs(limit=100_000)
            if r["station"] == name
            and r["end_time"]
            and r["status"] != "crashed"
            and r["status"] != "missed"
        ]
        intervals += [(s, e, f"gui hold at {s:.3f}") for n, s, e in gui_holds if n == name]
        latest_end, owner = float("-inf"), ""
        for s, e, who in sorted(intervals):
            if s < latest_end:
                found.append(f"{name}: {owner} and {who} overlap at {s:.3f}")
            if e > latest_end:
                latest_end, owner = e, who
    return found
