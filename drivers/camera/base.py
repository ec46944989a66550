"""What every camera does, over any SDK: settings, software trigger, timed exposures, reads.

Subclasses (:mod:`.genicam`, :mod:`.basler`) only translate a handful of primitives into
their SDK: read/write/execute a GenICam feature, start/stop streaming, fetch a buffer.
Settings use GenICam's standard feature names (``ExposureTime`` in µs, ``Gain`` in dB,
``Width``/``Height``/``OffsetX``/``OffsetY``, ``PixelFormat``), which both SDKs expose.

Timing follows openwfs' detector model, on the instrument clock (a simulated world's in
simulation): :meth:`Camera.trigger` starts an exposure at ``max(now, at)`` - ``at`` is
typically the SLM's ``ready_at`` - and remembers when; :meth:`Camera.wait_exposure_end`
returns when the sensor stops integrating, which is when an actuator may move again
while the frame is still being read out; :meth:`Camera.read` returns the frame with its
exposure start time.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from typing import Any

import numpy as np

from labpnn.clock import WALL_CLOCK
from labpnn.data_hooks import DataHooks
from labpnn.errors import InstrumentError, LimitError
from labpnn.settings import InstrumentSettings, Setting

PIXEL_FORMATS = ("Mono8", "Mono12", "Mono16")
EXPOSURE_FEATURES = ("ExposureTime", "ExposureTimeAbs")  # SFNC name, then older GigE name


def is_timeout(exc: BaseException) -> bool:
    """genicam's, pypylon's and the simulators' timeouts are all named so."""
    return "Timeout" in type(exc).__name__


class Camera(InstrumentSettings):
    SETTINGS = (
        Setting("exposure_s", "s", "exposure time", range=(1e-6, 10.0)),
        Setting("gain_db", "dB", "analogue gain", range=(0.0, 48.0)),
        Setting("roi", "px", "(x, y, width, height) on the sensor", kind=tuple),
        Setting("pixel_format", "", "bits per pixel", kind=str, choices=PIXEL_FORMATS),
        Setting(
            "trigger_mode", "", "exposures start on trigger()", kind=str, choices=("software",)
        ),
        Setting("timeout_s", "s", "how long read() waits for a frame", range=(1e-3, 600.0)),
    )

    def __init__(self, label: str, limits: dict | None, clock: Any = None):
        self._init_settings(label, limits)
        self.clock = clock or WALL_CLOCK
        self._timeout_s = 2.0
        self._streaming = False
        self._triggers: deque[float] = deque()
        self._last_trigger: tuple[float, float] | None = None
        self._exposure_feature = "ExposureTime"
        self.serial = ""
        self.data_hooks = DataHooks()  # each frame read, for live views

    # -- SDK primitives (subclasses) -----------------------------------------------------
    def _has(self, name: str) -> bool:
        raise NotImplementedError

    def _read(self, name: str) -> Any:
        raise NotImplementedError

    def _write(self, name: str, value: Any) -> None:
        raise NotImplementedError

    def _bounds(self, name: str) -> tuple[float, float, float | None]:
        raise NotImplementedError

    def _send_trigger(self) -> None:
        raise NotImplementedError

    def _start_stream(self) -> None:
        raise NotImplementedError

    def _stop_stream(self) -> None:
        raise NotImplementedError

    def _fetch(self, timeout_s: float) -> np.ndarray:
        raise NotImplementedError

    def _open(self) -> None:
        """Find the device (``self._wanted`` serial) and open it."""
        raise NotImplementedError

    def _close_device(self, release_sdk: bool = True) -> None:
        raise NotImplementedError

    # -- shared set-up ----------------------------------------------------------------
    def _after_open(self, settings: dict[str, Any]) -> None:
        """Pick the exposure feature and apply the constructor's settings, limits checked."""
        self._exposure_feature = next(
            (f for f in EXPOSURE_FEATURES if self._has(f)), EXPOSURE_FEATURES[0]
        )
        for name in ("timeout_s", "pixel_format", "roi", "exposure_s", "gain_db"):
            if settings.get(name) is not None:
                setattr(self, name, settings[name])

    def _timeout_message(self, timeout_s: float) -> str:
        pending = len(self._triggers)
        return (
            f"{self.label}: camera {self.serial} delivered no frame within {timeout_s:g} s "
            f"({pending} triggered exposure(s) unread): is it still connected and triggered?"
        )

    def _device_range(self, name: str, value: float, lo: float, hi: float, unit: str) -> None:
        if not lo <= value <= hi:
            raise LimitError(
                f"{self.label}: {name}={value:g} {unit} is outside this camera's "
                f"{lo:g}..{hi:g} {unit}"
            )

    # -- settings -----------------------------------------------------------------------
    @property
    def exposure_s(self) -> float:
        return float(self._read(self._exposure_feature)) * 1e-6

    @exposure_s.setter
    def exposure_s(self, value: float) -> None:
        value = self.check("exposure_s", value)
        lo, hi, _ = self._bounds(self._exposure_feature)
        self._device_range("exposure_s", value, lo * 1e-6, hi * 1e-6, "s")
        self._write(self._exposure_feature, value * 1e6)

    @property
    def gain_db(self) -> float:
        return float(self._read("Gain"))

    @gain_db.setter
    def gain_db(self, value: float) -> None:
        value = self.check("gain_db", value)
        lo, hi, _ = self._bounds("Gain")
        self._device_range("gain_db", value, lo, hi, "dB")
        self._write("Gain", value)

    @property
    def sensor_size(self) -> tuple[int, int]:
        """(width, height) of the full sensor in px."""
        for w, h in (("WidthMax", "HeightMax"), ("SensorWidth", "SensorHeight")):
            if self._has(w) and self._has(h):
                return int(self._read(w)), int(self._read(h))
        return int(self._bounds("Width")[1]), int(self._bounds("Height")[1])

    @property
    def roi(self) -> tuple[int, int, int, int]:
        return tuple(int(self._read(n)) for n in ("OffsetX", "OffsetY", "Width", "Height"))

    @roi.setter
    def roi(self, value: Any) -> None:
        value = self.check("roi", value)
        try:
            x, y, w, h = (int(v) for v in value)
        except (TypeError, ValueError):
            raise LimitError(
                f"{self.label}: roi must be (x, y, width, height), got {value!r}"
            ) from None
        width, height = self.sensor_size
        if w < 1 or h < 1 or x < 0 or y < 0 or x + w > width or y + h > height:
            raise LimitError(
                f"{self.label}: roi=({x}, {y}, {w}, {h}) does not fit the {width}x{height} px sensor"
            )
        for name, v in (("Width", w), ("Height", h), ("OffsetX", x), ("OffsetY", y)):
            inc = self._bounds(name)[2] or 1
            if v % inc:
                raise LimitError(f"{self.label}: roi {name}={v} must be a multiple of {inc:g} px")
        self._pause()
        self._write("OffsetX", 0)
        self._write("OffsetY", 0)
        self._write("Width", w)
        self._write("Height", h)
        self._write("OffsetX", x)
        self._write("OffsetY", y)

    @property
    def pixel_format(self) -> str:
        return str(self._read("PixelFormat"))

    @pixel_format.setter
    def pixel_format(self, value: str) -> None:
        value = self.check("pixel_format", value)
        self._pause()
        self._write("PixelFormat", value)

    @property
    def bits(self) -> int:
        return int(self.pixel_format.removeprefix("Mono"))

    @property
    def full_scale(self) -> int:
        """The saturated pixel value, ``2**bits - 1``."""
        return 2**self.bits - 1

    @property
    def trigger_mode(self) -> str:
        return "software"

    @trigger_mode.setter
    def trigger_mode(self, value: str) -> None:
        self.check("trigger_mode", value)

    @property
    def timeout_s(self) -> float:
        return self._timeout_s

    @timeout_s.setter
    def timeout_s(self, value: float) -> None:
        self._timeout_s = self.check("timeout_s", value)

    # -- acquisition --------------------------------------------------------------------
    def _ensure_streaming(self) -> None:
        if self._streaming:
            return
        if self._has("TriggerSelector"):
            self._write("TriggerSelector", "FrameStart")
        self._write("TriggerMode", "On")
        self._write("TriggerSource", "Software")
        if self._has("AcquisitionMode"):
            self._write("AcquisitionMode", "Continuous")
        self._start_stream()
        self._streaming = True
        self._triggers.clear()

    def _pause(self) -> None:
        if self._streaming:
            self._streaming = False
            self._triggers.clear()
            self._stop_stream()

    @property
    def acquiring(self) -> bool:
        return self._streaming

    def trigger(self, at: float | None = None) -> float:
        """Start an exposure at ``max(now, at)`` on the clock; returns its start time."""
        self._ensure_streaming()
        if at is not None:
            self.clock.sleep_until(at)
        exposure = self.exposure_s
        self._send_trigger()
        t = self.clock.now()
        self._triggers.append(t)
        self._last_trigger = (t, exposure)
        return t

    def wait_exposure_end(self) -> float:
        """Block until the last triggered exposure has ended; returns that time."""
        if self._last_trigger is None:
            return self.clock.now()
        t, exposure = self._last_trigger
        self.clock.sleep_until(t + exposure)
        return t + exposure

    def read(self, timeout_s: float | None = None) -> tuple[np.ndarray, float]:
        """(frame [h, w], exposure start) of the oldest unread exposure."""
        timeout = self._timeout_s if timeout_s is None else float(timeout_s)
        if not self._streaming:
            raise InstrumentError(
                f"{self.label}: read() with no acquisition running: trigger() first"
            )
        frame = self._fetch(timeout)
        t = self._triggers.popleft() if self._triggers else math.nan
        self.data_hooks("frame", frame)
        return frame, t

    def grab(self, timeout_s: float | None = None, at: float | None = None):
        """trigger() then read(): (frame, exposure start)."""
        self.trigger(at)
        return self.read(timeout_s)

    # -- instrument contract --------------------------------------------------------------
    def safe_state(self) -> None:
        """Stop acquisition; settings are left as they are (a camera cannot hurt anything)."""
        self._pause()

    def reconnect(self) -> None:
        """Close and reopen the device, restoring exposure, gain, ROI and pixel format.

        The recovery step for a camera that stopped delivering or dropped off the bus
        (``labpnn.faults.with_retries(..., recover=camera.reconnect)``).
        """
        kept = {}
        for name in ("pixel_format", "roi", "exposure_s", "gain_db"):
            with contextlib.suppress(Exception):
                kept[name] = getattr(self, name)
        self._streaming = False
        self._triggers.clear()
        self._last_trigger = None
        self._close_device(release_sdk=False)
        self._open()
        for name, value in kept.items():
            setattr(self, name, value)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.safe_state()
        self._close_device()
