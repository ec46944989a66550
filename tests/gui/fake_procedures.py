"""Procedures for the GUI tests on the fake bench (tests/core/fake-station.yaml).

They exercise what calibrate-tm does not: pausing, operator prompts, a run stuck in
an instrument call. Frames carry a few saturated pixels so the camera dock's flag
shows.
"""

from __future__ import annotations

import time

import numpy as np

from labpnn import live
from labpnn.operator import ConnectStandard
from labpnn.procedure import FloatParameter, IntegerParameter, LabProcedure


class Steps(LabProcedure):
    """Count steps with a loss going down; pausable between steps."""

    name = "gui-steps"
    bench_kinds = ("fake",)
    roles = ("detector",)
    supports_pause = True
    n_steps = IntegerParameter("Steps", default=20, minimum=1, maximum=100000)
    delay_s = FloatParameter("Delay per step", units="s", default=0.05, minimum=0, maximum=10)

    def _maybe_pause(self) -> None:
        # Until LabProcedure.progress holds paused runs itself, do what it will do.
        run_id = str(self.run.f.attrs.get("run_id", "")) if self.run is not None else ""
        if run_id and not getattr(self, "_pause_check", None):
            live.hold_while_paused(
                run_id, self.should_stop, lambda: self.progress(self._done, self.n_steps)
            )

    def execute(self) -> None:
        rng = np.random.default_rng(0)
        self._done = 0
        for i in range(self.n_steps):
            frame = rng.integers(0, 3000, size=(64, 64), dtype=np.uint16)
            frame[10:12, 10:12] = 65535
            self.run.append_frame("camera", frame, t=time.time())
            self.run.append_row(epoch=i, loss=1.0 / (i + 1), accuracy=i / self.n_steps)
            self._done = i + 1
            self.progress(i + 1, self.n_steps)
            self._maybe_pause()
            time.sleep(self.delay_s)
        self.run.set_summary(queries=self.n_steps)


class AskOperator(LabProcedure):
    """Ask the operator to connect a calibration standard, then finish."""

    name = "gui-ask"
    bench_kinds = ("fake",)
    timeout_s = FloatParameter("Answer within", units="s", default=60.0, minimum=1, maximum=3600)

    def execute(self) -> None:
        self.progress(0, 1)
        answer = self.operator.request(ConnectStandard("short", port=1), timeout_s=self.timeout_s)
        self.run.set_summary(answered_by=str(answer.get("answered_by")))
        self.progress(1, 1)


class Stuck(LabProcedure):
    """Blocks in one long 'instrument call' that ignores the stop request."""

    name = "gui-stuck"
    bench_kinds = ("fake",)
    seconds = FloatParameter("Block for", units="s", default=60.0, minimum=0, maximum=600)

    def execute(self) -> None:
        self.progress(0, 1)
        self.run.append_row(step=0)
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:  # time.sleep resumes after the SIGINT handler
            time.sleep(0.5)


class MissingDetector:
    """A driver whose device is not there: what an unplugged camera looks like."""

    SETTINGS = ()

    def __init__(self, label="detector", limits=None, serial="999", **options):
        from labpnn.errors import DeviceLost

        raise DeviceLost(
            f"{label}: no detector with serial {serial} answers; check its cable and power"
        )
