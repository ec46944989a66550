"""A bench small enough for a week of nights in a minute: instruments, faults, procedures.

``FakeProbe`` stands in for any instrument. It journals every use (so a test can prove
two runs never used one bench at the same time), keeps its output state in a file
(so it outlives the run, like a VNA whose RF stays on), and injects the faults the
simulators will: transient timeouts, hangs, crashes, unrecoverable errors, NaN data.
The fault of a run is drawn once at connect from the station's ``faults`` option.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import numpy as np

from labpnn.errors import InstrumentError, InstrumentTimeout
from labpnn.faults import BadData, with_retries
from labpnn.procedure import BooleanParameter, FloatParameter, IntegerParameter, LabProcedure
from labpnn.settings import InstrumentSettings, Setting

HERE = Path(__file__).resolve().parent
EXTRA_PROCEDURES = ",".join(
    [
        "night-measure=tests.overnight.fakebench:NightMeasure",
        "count-flushed=tests.overnight.fakebench:CountFlushed",
        "slow-step=tests.overnight.fakebench:SlowStep",
        "vna-sweeps=tests.overnight.fakebench:VnaSweeps",
        "needs-tm=tests.overnight.fakebench:NeedsTM",
        "touch=tests.overnight.fakebench:Touch",
        "light-up=tests.overnight.fakebench:LightUp",
        "stuck=tests.overnight.fakebench:Stuck",
    ]
)
RUN_FAULTS = ("hang", "crash", "error", "nan", "timeout")


def journal(path: str | None, station: str, event: str) -> None:
    """Append one line; O_APPEND writes survive a kill -9 of the writer."""
    if not path:
        return
    line = f"{time.time():.6f} {station} {os.getpid()} {event}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


class FakeProbe(InstrumentSettings):
    SETTINGS = (
        Setting("output", kind=bool, doc="source output (RF, laser, speaker) on"),
        Setting("exposure_s", unit="s", range=(1e-6, 1.0)),
    )

    def __init__(
        self,
        label="probe",
        limits=None,
        station="bench",
        journal_file=None,
        state_file=None,
        faults=None,
        fault_seed=None,
        **options,
    ):
        self._init_settings(label, limits)
        self.station_name = station
        self.journal_path = journal_file
        self.state_file = state_file
        rng = random.Random(fault_seed)
        self.fault = None
        for name, p in (faults or {}).items():
            if name not in RUN_FAULTS:
                raise ValueError(f"unknown fault '{name}'")
            if self.fault is None and rng.random() < float(p):
                self.fault = name
        self.fault_step = rng.randint(1, 3)
        self.timeouts_left = 2 if self.fault == "timeout" else 0
        self._exposure_s = 0.01
        self._output = self._load().get("output", False)
        journal(self.journal_path, self.station_name, f"open {label} fault={self.fault}")

    def _load(self) -> dict:
        if self.state_file and Path(self.state_file).exists():
            return json.loads(Path(self.state_file).read_text() or "{}")
        return {}

    def _save(self) -> None:
        if self.state_file:
            Path(self.state_file).write_text(json.dumps({"output": self._output}))

    @property
    def output(self) -> bool:
        return bool(self._load().get("output", self._output))

    @output.setter
    def output(self, value) -> None:
        self._output = self.check("output", value)
        self._save()

    @property
    def exposure_s(self) -> float:
        return self._exposure_s

    @exposure_s.setter
    def exposure_s(self, value) -> None:
        self._exposure_s = self.check("exposure_s", value)

    def read(self, step: int) -> np.ndarray:
        journal(self.journal_path, self.station_name, f"use {self.label} {step}")
        if step == self.fault_step:
            if self.fault == "hang":
                time.sleep(3600)  # an instrument call that never returns
            elif self.fault == "crash":
                os.kill(os.getpid(), signal.SIGKILL)
            elif self.fault == "error":
                raise InstrumentError(f"{self.label}: the instrument reported error -222")
            elif self.fault == "nan":
                return np.full(4, np.nan)
        if step >= self.fault_step and self.timeouts_left > 0:
            self.timeouts_left -= 1
            raise InstrumentTimeout(f"{self.label}: no reply within 2 s")
        return np.full(4, float(step))

    def reconnect(self) -> None:
        journal(self.journal_path, self.station_name, f"reconnect {self.label}")

    def identity(self):
        return {"vendor": "labpnn", "model": "fake-probe", "serial": self.label}

    def safe_state(self) -> None:
        self.output = False
        journal(self.journal_path, self.station_name, f"safe {self.label}")

    def close(self) -> None:
        journal(self.journal_path, self.station_name, f"close {self.label}")


class NightMeasure(LabProcedure):
    """A nightly calibration in miniature: a few steps, then a registry entry."""

    name = "night-measure"
    bench_kinds = ("optical", "acoustic", "microwave", "fake")
    roles = ("probe",)
    watchdog_s = 1.5
    steps = IntegerParameter("Steps", default=4, minimum=1, maximum=1000)
    step_s = FloatParameter("Seconds per step", units="s", default=0.1, minimum=0, maximum=60)

    def execute(self) -> None:
        probe = self.station["probe"]
        probe.output = True
        for step in range(1, self.steps + 1):
            data = with_retries(
                lambda s=step: probe.read(s),
                procedure=self,
                what=f"read step {step}",
                recover=probe.reconnect,
                delay_s=0.05,
            )
            if not np.isfinite(data).all():
                raise BadData(f"{probe.label} returned NaN at step {step}")
            self.run.append_row(step=step, value=float(data.mean()))
            self.progress(step, self.steps)
            time.sleep(self.step_s)
        self.save_calibration()

    def save_calibration(self) -> None:
        kind = {"optical": "tm", "microwave": "vna", "acoustic": "audio"}.get(
            self.station.bench.kind
        )
        if kind is None:
            return
        night = len(self.registry.history(kind))
        rng = np.random.default_rng(1000 + night)
        base = np.random.default_rng(7)
        if kind == "tm":
            tm0 = base.normal(size=(16, 32)) + 1j * base.normal(size=(16, 32))
            noise = rng.normal(size=tm0.shape) + 1j * rng.normal(size=tm0.shape)
            arrays, metrics = {"tm": tm0 + 0.05 * (night + 1) * noise}, {}
        elif kind == "vna":
            f = np.linspace(1e9, 2e9, 11)
            arrays = {"frequency_hz": f}
            for term in ("directivity", "source_match", "reflection_tracking"):
                e0 = base.normal(size=11) + 1j * base.normal(size=11)
                arrays[term] = e0 * (1 + 0.01 * night) + 0.002 * rng.normal(size=11)
            metrics = {}
        else:
            arrays = {}
            metrics = {
                "latency_samples": 480 + int(rng.integers(-2, 3)),
                "gain": 0.8 - 0.01 * night,
            }
        self.run.write_array(f"calibration/{kind}_marker", np.array([night]))
        self.registry.save(kind, arrays, metrics, run_file=self.run.path, valid_for_s=36 * 3600)


class CountFlushed(LabProcedure):
    """Frames numbered 0, 1, 2...; after each flushed append, the index goes to a sidecar.

    The sidecar (``<run file>.flushed``) is what the kill test holds the file to: every
    index written there was flushed before it was written, so must be in the file.
    """

    name = "count-flushed"
    bench_kinds = ("fake", "optical", "acoustic", "microwave")
    roles = ("probe",)
    n_frames = IntegerParameter("Frames", default=200, minimum=1, maximum=10**6)
    delay_s = FloatParameter("Delay between frames", units="s", default=0.005, minimum=0)
    checkpoint_every = IntegerParameter("Checkpoint every", default=25, minimum=0)

    def execute(self) -> None:
        sidecar = os.open(
            str(self.run.path) + ".flushed", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644
        )
        try:
            for i in range(self.n_frames):
                self.run.append_frame("camera", np.full((16, 16), i, dtype=np.uint16))
                self.run.append_row(step=i)
                os.write(sidecar, f"{i}\n".encode())
                if self.checkpoint_every and i % self.checkpoint_every == 0:
                    self.run.checkpoint({"i": np.array([i])}, {"i": i})
                self.progress(i + 1, self.n_frames)
                time.sleep(self.delay_s)
        finally:
            os.close(sidecar)


class SlowStep(LabProcedure):
    """Steps of a fixed length (the bench's faults apply), for the scheduler's tests."""

    name = "slow-step"
    bench_kinds = ("fake", "optical", "acoustic", "microwave")
    roles = ("probe",)
    watchdog_s = 3.0
    seconds = FloatParameter("Total seconds", units="s", default=1.0, minimum=0, maximum=600)

    def execute(self) -> None:
        probe = self.station["probe"]
        probe.output = True
        steps = max(1, int(self.seconds / 0.1))
        for step in range(steps):
            data = with_retries(lambda s=step: probe.read(s + 1), procedure=self,
                                what=f"read step {step + 1}", delay_s=0.05)  # fmt: skip
            if not np.isfinite(data).all():
                raise BadData(f"{probe.label} returned NaN at step {step + 1}")
            self.run.append_row(step=step)
            self.progress(step + 1, steps)
            time.sleep(self.seconds / steps)


def station_yaml(
    folder: Path,
    name: str,
    kind: str = "fake",
    faults: dict | None = None,
    roles: tuple[str, ...] = ("probe",),
    **sections,
) -> Path:
    """Write a station file for a fake bench; its journal and state files sit beside it."""
    import yaml

    instruments = {}
    for role in roles:
        spec = {
            "driver": "tests.overnight.fakebench.FakeProbe",
            "station": name,
            "journal_file": str(folder / f"{name}.journal"),
            "state_file": str(folder / f"{name}.{role}.state.json"),
        }
        if faults:
            spec["faults"] = dict(faults)
        instruments[role] = spec
    config = {
        "name": name,
        "instruments": instruments,
        "bench": {"kind": kind, "layout": {"name": name}},
        **sections,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def subprocess_env() -> dict[str, str]:
    """What child processes need to import these fakes."""
    repo = str(HERE.parent.parent)
    old = os.environ.get("PYTHONPATH", "")
    return {
        "PYTHONPATH": repo + (os.pathsep + old if old else ""),
        "LABPNN_EXTRA_PROCEDURES": EXTRA_PROCEDURES,
        "PYTHONUNBUFFERED": "1",
    }


class VnaSweeps(LabProcedure):
    """Sweeps the VNA of a microwave station, for watchdog and safe-state tests."""

    name = "vna-sweeps"
    bench_kinds = ("microwave",)
    roles = ("vna",)
    watchdog_s = 1.0
    sweeps = IntegerParameter("Sweeps", default=5, minimum=1, maximum=10000)

    def execute(self) -> None:
        vna = self.station["vna"]
        vna.define_traces(["S21"])
        vna.rf_on = True
        for i in range(self.sweeps):
            vna.sweep()
            self.progress(i + 1, self.sweeps)


class NeedsTM(LabProcedure):
    """Uses the latest valid TM, as a focusing or training run would."""

    name = "needs-tm"
    bench_kinds = ("optical",)
    roles = ("probe",)
    auto_recalibrate = BooleanParameter("Recalibrate first if the TM expired", default=False)

    def execute(self) -> None:
        from labpnn.recalibrate import ensure_calibration

        cal = ensure_calibration(self, "tm", "night-measure", {"steps": 2, "step_s": 0.0})
        self.run.set_summary(calibration_id=cal.id)
        self.progress(1, 1)


class Touch(LabProcedure):
    """Connects, reports progress a few times and ends: the runner's safe state does the rest."""

    name = "touch"
    watchdog_s = 30.0

    def execute(self) -> None:
        for i in range(3):
            self.progress(i + 1, 3)


class LightUp(LabProcedure):
    """Switches every source on (SLM pattern, RF, sound), then ends or fails on request."""

    name = "light-up"
    watchdog_s = 60.0
    fail = BooleanParameter("End with an instrument error", default=False)

    def execute(self) -> None:
        for driver in self.station.instruments.values():
            if hasattr(driver, "show"):
                driver.show(np.full((1, 1), np.pi / 2))
            if hasattr(driver, "rf_on"):
                driver.define_traces(["S21"])
                driver.rf_on = True
            if hasattr(driver, "output_level"):
                driver.output_level = driver.effective_range("output_level")[1] / 2
        self.progress(1, 1)
        if self.fail:
            raise InstrumentError("the instrument reported error -222 mid-run")


class Stuck(LabProcedure):
    """Switches the source on, then blocks in a call that never returns (no SIGINT helps)."""

    name = "stuck"
    roles = ("probe",)
    watchdog_s = 600.0

    def execute(self) -> None:
        self.station["probe"].output = True
        self.progress(0, 1)
        while True:
            time.sleep(3600)
