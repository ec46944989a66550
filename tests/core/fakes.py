"""A minimal instrument and procedure for testing the spine without any bench physics."""

from __future__ import annotations

import time

import numpy as np

from labpnn.procedure import Estimate, FloatParameter, IntegerParameter, LabProcedure
from labpnn.settings import InstrumentSettings, Setting

SAFE_LOG = []


class FakeDetector(InstrumentSettings):
    SETTINGS = (
        Setting("exposure_s", unit="s", range=(1e-6, 1.0), doc="integration time"),
        Setting("gain_db", unit="dB", range=(0.0, 24.0)),
    )

    def __init__(
        self,
        label="detector",
        limits=None,
        serial="1234",
        stays_on: bool = False,
        safe_delay_s: float = 0.0,
        **options,
    ):
        self._init_settings(label, limits)
        self.serial = serial
        self.stays_on = stays_on  # a device whose safe state fails (RF that will not switch off)
        self.safe_delay_s = safe_delay_s  # a device slow to reach its safe state
        self._exposure_s = 0.01
        self._gain_db = 0.0
        self.safe = False

    @property
    def exposure_s(self):
        return self._exposure_s

    @exposure_s.setter
    def exposure_s(self, value):
        self._exposure_s = self.check("exposure_s", value)

    @property
    def gain_db(self):
        return self._gain_db

    @gain_db.setter
    def gain_db(self, value):
        self._gain_db = self.check("gain_db", value)

    def grab(self):
        return np.full((8, 8), self._exposure_s * 1000, dtype=np.float32)

    def identity(self):
        return {"vendor": "labpnn", "model": "fake", "serial": self.serial}

    def safe_state(self):
        if self.stays_on:
            from labpnn.errors import InstrumentError

            raise InstrumentError("detector: output is still on after the off command")
        time.sleep(self.safe_delay_s)
        self.safe = True

    def close(self):
        pass


class CountFrames(LabProcedure):
    """Grab frames from a fake detector, slowly enough to be interrupted."""

    name = "count-frames"
    bench_kinds = ("fake",)
    roles = ("detector",)
    n_frames = IntegerParameter("Frames", default=5, minimum=1, maximum=100000)
    delay_s = FloatParameter("Delay between frames", units="s", default=0.0, minimum=0, maximum=10)
    exposure_s = FloatParameter("Exposure", units="s", default=0.01, minimum=0, maximum=100)

    def estimate(self):
        return Estimate(queries=self.n_frames, seconds=self.n_frames * (self.delay_s + 0.01))

    def validate(self):
        super().validate()
        self.station["detector"].check("exposure_s", self.exposure_s)

    def execute(self):
        det = self.station["detector"]
        det.exposure_s = self.exposure_s
        for i in range(self.n_frames):
            self.run.append_frame("detector", det.grab(), t=time.time())
            self.run.append_row(step=i)
            self.progress(i + 1, self.n_frames)
            if self.delay_s:
                time.sleep(self.delay_s)
        self.run.set_summary(queries=self.n_frames)


class Hang(LabProcedure):
    """Stops reporting progress, as a run stuck in an instrument call would."""

    name = "hang"
    bench_kinds = ("fake",)
    watchdog_s = 1.0
    seconds = FloatParameter("Hang for", units="s", default=30.0)

    def execute(self):
        self.progress(0, 1)
        time.sleep(self.seconds)
