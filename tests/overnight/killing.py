"""The kill test, shared by the suite (10 trials) and ``scripts/kill_test.py`` (100).

One trial: start ``labpnn run count-flushed`` (frames numbered 0, 1, 2...), wait until
it has flushed its first frame, wait a random moment more, ``kill -9`` it. Then the
file must open with plain h5py (``swmr=True``) and hold every frame whose index the
run had written to its sidecar after the flush, each frame with the right content.
After the trials, one more labpnn start must have marked every killed run
``crashed`` in the ledger.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from labpnn.ledger import Ledger


@dataclass
class TrialResult:
    path: Path | None
    killed_after_s: float
    flushed: int = 0
    in_file: int = 0
    readable: bool = False
    complete: bool = False
    problem: str = ""
    readable_at_once: bool = True  # before the next labpnn start cleared any stale flags


@dataclass
class KillReport:
    trials: list[TrialResult] = field(default_factory=list)
    crashed_in_ledger: int = 0
    not_crashed: list[str] = field(default_factory=list)

    @property
    def files(self) -> int:
        return sum(t.path is not None for t in self.trials)

    @property
    def readable(self) -> int:
        return sum(t.readable for t in self.trials)

    @property
    def complete(self) -> int:
        return sum(t.complete for t in self.trials)

    @property
    def ok(self) -> bool:
        n = len(self.trials)
        return (
            self.files == n
            and self.readable == n
            and self.complete == n
            and self.crashed_in_ledger == n
        )

    def lines(self) -> list[str]:
        n = len(self.trials)
        frames = sum(t.flushed for t in self.trials)
        return [
            f"kill -9 trials:            {n}",
            f"run files created:         {self.files}/{n}",
            f"open with h5py swmr=True:  {self.readable}/{n} after the next labpnn start "
            f"({sum(t.readable_at_once for t in self.trials)}/{n} straight after the kill; "
            f"the others were killed inside a non-SWMR structural change)",
            f"hold every flushed frame:  {self.complete}/{n}  ({frames} flushed frames checked)",
            f"marked crashed in ledger:  {self.crashed_in_ledger}/{n}",
            *(f"  problem: {t.path}: {t.problem}" for t in self.trials if t.problem),
            *(f"  not crashed: {r}" for r in self.not_crashed),
        ]


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "labpnn.cli", *args]


def check_file(path: Path) -> TrialResult:
    result = TrialResult(path, 0.0)
    sidecar = Path(str(path) + ".flushed")
    flushed = [int(x) for x in sidecar.read_text().split()] if sidecar.exists() else []
    result.flushed = len(flushed)
    try:
        with h5py.File(path, "r", libver="latest", swmr=True) as f:
            frames = f["frames/camera"][()] if "frames/camera" in f else np.zeros((0, 1, 1))
            result.readable = True
    except Exception as exc:  # the one thing this test exists to catch
        result.problem = f"does not open: {type(exc).__name__}: {exc}"
        return result
    result.in_file = len(frames)
    expected = np.arange(len(frames))
    content_ok = bool(np.all(frames.reshape(len(frames), -1)[:, 0] == expected))
    if result.in_file < result.flushed:
        result.problem = f"holds {result.in_file} frames but {result.flushed} were flushed"
    elif not content_ok:
        result.problem = "frame contents do not match their indices"
    else:
        result.complete = True
    return result


def one_trial(
    station: str,
    data_dir: Path,
    env: dict[str, str],
    rng: random.Random,
    max_extra_s: float = 0.6,
    timeout_s: float = 30.0,
) -> TrialResult:
    before = set(data_dir.rglob("*.h5"))
    proc = subprocess.Popen(
        _cmd(
            "run",
            "count-flushed",
            "--station",
            station,
            "--set",
            "n_frames=1000000",
            "--set",
            "delay_s=0.002",
            "--no-progress",
        ),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + timeout_s
    path = None
    try:
        while time.monotonic() < deadline:
            new = [p for p in data_dir.rglob("*.h5") if p not in before]
            if new and Path(str(new[0]) + ".flushed").exists():
                path = new[0]
                break
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace").strip().splitlines()[-1:]
                return TrialResult(None, 0.0, problem=f"run ended early: {err}")
            time.sleep(0.01)
        extra = rng.uniform(0.0, max_extra_s)
        time.sleep(extra)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
    if path is None:
        return TrialResult(None, 0.0, problem="no run file appeared")
    result = TrialResult(path, extra)
    try:
        with h5py.File(path, "r", libver="latest", swmr=True):
            pass
    except OSError:
        result.readable_at_once = False
    return result


def kill_trials(
    n: int, station: str, data_dir: Path, env: dict[str, str], seed: int = 0, progress=None
) -> KillReport:
    rng = random.Random(seed)
    report = KillReport()
    for i in range(n):
        report.trials.append(one_trial(station, data_dir, env, rng))
        if progress is not None:
            progress(i + 1, n, report.trials[-1])
    # the next labpnn start marks the dead runs crashed
    subprocess.run(_cmd("stations"), env=env, capture_output=True, timeout=60)
    for i, trial in enumerate(report.trials):
        if trial.path is not None:
            checked = check_file(trial.path)
            checked.killed_after_s = trial.killed_after_s
            checked.readable_at_once = trial.readable_at_once
            report.trials[i] = checked
    ledger = Ledger()
    try:
        for trial in report.trials:
            if trial.path is None:
                continue
            row = ledger.run_for_file(trial.path)
            if row and row["status"] == "crashed":
                report.crashed_in_ledger += 1
            else:
                report.not_crashed.append(f"{trial.path}: {row and row['status']}")
    finally:
        ledger.close()
    return report
