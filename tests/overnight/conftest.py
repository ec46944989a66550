"""Fixtures for overnight tests: fake benches, a fake clock, and a scheduler to drive."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from labpnn.ledger import Ledger
from labpnn.notify import Notifier, NotifyConfig
from labpnn.scheduler import FakeClock, Scheduler
from labpnn.schedules import Schedule, add_schedule
from tests.overnight.fakebench import EXTRA_PROCEDURES, station_yaml, subprocess_env


def at(hour: int, minute: int = 0, day: int = 1) -> float:
    """Local epoch time on a fixed day of 2030, so cron times read like the lab's."""
    return dt.datetime(2030, 1, day, hour, minute).timestamp()


@pytest.fixture(autouse=True)
def fake_procedures(monkeypatch):
    for key, value in subprocess_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("LABPNN_EXTRA_PROCEDURES", EXTRA_PROCEDURES)


@pytest.fixture
def bench(tmp_path):
    """``bench(name, kind, faults=None)`` writes a fake station file and returns its path."""
    folder = tmp_path / "benches"
    folder.mkdir()

    def make(name: str = "night-optical", kind: str = "optical", faults=None, **extra):
        return station_yaml(folder, name, kind, faults, **extra)

    return make


@pytest.fixture
def ledger():
    led = Ledger()
    yield led
    led.close()


@pytest.fixture
def add(ledger):
    """``add(name, procedure, station, cron, created, **fields)``: a checked schedule."""

    def make(name, procedure, station, cron, created, parameters=None, check=True, **fields):
        sched = Schedule(
            name=name,
            procedure=procedure,
            station=str(station),
            cron=cron,
            parameters={k: str(v) for k, v in (parameters or {}).items()},
            created=created,
            **fields,
        )
        return add_schedule(ledger, sched, check=check)

    return make


@pytest.fixture
def scheduler_at():
    """``scheduler_at(t, **kw)``: a scheduler on a fake clock starting at ``t``."""
    made = []

    def make(t: float, notifier: Notifier | None = None, **kw) -> Scheduler:
        kw.setdefault("poll_s", 0.2)
        kw.setdefault("idle_s", 3600.0)
        clock = FakeClock(t)
        sched = Scheduler(
            clock=clock,
            notifier=notifier or Notifier(NotifyConfig(summary_cron=None)),
            env=subprocess_env(),
            **kw,
        )
        made.append(sched)
        return sched

    yield make
    for sched in made:
        for launch in sched.launches.values():  # never leave a child behind a failed test
            if launch.proc is not None and launch.proc.poll() is None:
                launch.proc.kill()
                launch.proc.wait()
        sched.ledger.close()


def journal_intervals(path: Path) -> dict[int, tuple[float, float]]:
    """Per process: first and last time it touched the bench (from the bench journal)."""
    spans: dict[int, list[float]] = {}
    if not Path(path).exists():
        return {}
    for line in Path(path).read_text().splitlines():
        t, _, pid, *_ = line.split()
        spans.setdefault(int(pid), []).append(float(t))
    return {pid: (min(ts), max(ts)) for pid, ts in spans.items()}


def overlaps(intervals: list[tuple[float, float, str]]) -> list[tuple[str, str]]:
    """Pairs of (label) whose [start, end] intervals overlap."""
    found = []
    latest_end, owner = float("-inf"), ""
    for start, end, label in sorted(intervals):
        if start < latest_end:
            found.append((owner, label))
        if end > latest_end:
            latest_end, owner = end, label
    return found


__all__ = ["at", "journal_intervals", "overlaps", "os"]
