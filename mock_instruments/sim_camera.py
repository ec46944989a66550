"""The simulated camera's device: GenICam features, software-trigger queue and frame timing.

The camera drivers (``labpnn.drivers.camera``) take an SDK entry point as ``backend``:
a ``harvesters.core.Harvester`` for ``GenICamCamera``, the ``pypylon.pylon`` module for
``BaslerCamera``. In simulation the optical world hands them the look-alikes in
:mod:`.sim_harvesters` and :mod:`.sim_pylon`, both over one :class:`SimCameraCore`:
the device's features (GenICam names and units, e.g. ``ExposureTime`` in µs), its
trigger queue and its read-out time. Frames are rendered by the world when they are
fetched, from the SLM history and the medium at the exposure's own time.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

PIXEL_FORMATS = {"Mono8": (8, np.uint8), "Mono12": (12, np.uint16), "Mono16": (16, np.uint16)}


class TimeoutException(Exception):
    """Named like genicam's, which is what real harvesters and pypylon raise."""


class AccessException(Exception):
    """Named like genicam's: the feature is locked (e.g. Width while streaming)."""


class OutOfRangeException(Exception):
    """Named like genicam's: the value is outside the feature's range."""


# name: (kind, min, max, inc); kinds: float, int, enum (symbolics), str (read-only), cmd
def _features(sensor: tuple[int, int]) -> dict[str, tuple]:
    w, h = sensor
    return {
        "ExposureTime": ("float", 10.0, 10_000_000.0, None),
        "Gain": ("float", 0.0, 24.0, None),
        "Width": ("int", 1, w, 1),
        "Height": ("int", 1, h, 1),
        "OffsetX": ("int", 0, w - 1, 1),
        "OffsetY": ("int", 0, h - 1, 1),
        "WidthMax": ("ro", w),
        "HeightMax": ("ro", h),
        "SensorWidth": ("ro", w),
        "SensorHeight": ("ro", h),
        "PixelFormat": ("enum", tuple(PIXEL_FORMATS)),
        "TriggerSelector": ("enum", ("FrameStart",)),
        "TriggerMode": ("enum", ("Off", "On")),
        "TriggerSource": ("enum", ("Software",)),
        "AcquisitionMode": ("enum", ("Continuous", "SingleFrame")),
        "TriggerSoftware": ("cmd",),
        "DeviceVendorName": ("ro", None),
        "DeviceModelName": ("ro", None),
        "DeviceSerialNumber": ("ro", None),
        "DeviceFirmwareVersion": ("ro", None),
    }


class SimCameraCore:
    """Device state of the simulated camera: features, trigger queue and timing."""

    LOCKED_WHILE_STREAMING = {"Width", "Height", "OffsetX", "OffsetY", "PixelFormat"}

    def __init__(
        self,
        render: Callable[..., np.ndarray],
        clock: Any,
        *,
        serial: str,
        sensor: tuple[int, int],
        roi: tuple[int, int, int, int],
        pixel_format: str = "Mono12",
        exposure_s: float = 2e-3,
        readout_s: float = 5e-3,
        stalled: Callable[[], bool] = lambda: False,
    ):
        self.render, self.clock, self.stalled = render, clock, stalled
        self.readout_s = float(readout_s)
        self.spec = _features(sensor)
        x, y, w, h = roi
        self.values: dict[str, Any] = {
            "ExposureTime": exposure_s * 1e6,
            "Gain": 0.0,
            "Width": w,
            "Height": h,
            "OffsetX": x,
            "OffsetY": y,
            "WidthMax": sensor[0],
            "HeightMax": sensor[1],
            "SensorWidth": sensor[0],
            "SensorHeight": sensor[1],
            "PixelFormat": pixel_format,
            "TriggerSelector": "FrameStart",
            "TriggerMode": "Off",
            "TriggerSource": "Software",
            "AcquisitionMode": "Continuous",
            "DeviceVendorName": "labpnn",
            "DeviceModelName": "SimCam optical-world",
            "DeviceSerialNumber": str(serial),
            "DeviceFirmwareVersion": "sim-1",
        }
        self.streaming = False
        self.pending: deque[tuple[float, float, tuple, str, float]] = deque()

    # -- features ---------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self.spec

    def get(self, name: str) -> Any:
        if self.spec[name][0] == "cmd":
            raise AccessException(f"{name} is a command")
        return self.values[name]

    def bounds(self, name: str) -> tuple[float, float, float | None]:
        kind, lo, hi, inc = self.spec[name]
        if name == "OffsetX":
            hi = self.values["WidthMax"] - self.values["Width"]
        elif name == "OffsetY":
            hi = self.values["HeightMax"] - self.values["Height"]
        elif name == "Width":
            hi = self.values["WidthMax"] - self.values["OffsetX"]
        elif name == "Height":
            hi = self.values["HeightMax"] - self.values["OffsetY"]
        return lo, hi, inc

    def set(self, name: str, value: Any) -> None:
        spec = self.spec[name]
        if spec[0] in ("ro", "cmd"):
            raise AccessException(f"{name} is not writable")
        if self.streaming and name in self.LOCKED_WHILE_STREAMING:
            raise AccessException(f"{name} is locked while acquisition is running")
        if spec[0] == "enum":
            if value not in spec[1]:
                raise OutOfRangeException(f"{name}: '{value}' is not one of {spec[1]}")
        else:
            lo, hi, _inc = self.bounds(name)
            if not lo <= value <= hi:
                raise OutOfRangeException(f"{name}: {value} is outside {lo}..{hi}")
            value = int(value) if spec[0] == "int" else float(value)
        self.values[name] = value

    def execute(self, name: str) -> None:
        if name != "TriggerSoftware":
            raise AccessException(f"{name} is not a command")
        if self.streaming and self.values["TriggerMode"] == "On":
            self.pending.append(self._exposure(self.clock.now()))

    def _exposure(self, t0: float) -> tuple[float, float, tuple, str, float]:
        v = self.values
        roi = (v["OffsetX"], v["OffsetY"], v["Width"], v["Height"])
        return t0, v["ExposureTime"] * 1e-6, roi, v["PixelFormat"], v["Gain"]

    # -- streaming --------------------------------------------------------------------
    def start(self) -> None:
        self.streaming = True

    def stop(self) -> None:
        self.streaming = False
        self.pending.clear()

    def fetch(self, timeout_s: float) -> tuple[np.ndarray, str, float]:
        """(frame [h, w], pixel format, exposure start) or TimeoutException."""
        if not self.streaming:
            raise AccessException("acquisition is not running")
        if not self.pending and self.values["TriggerMode"] == "Off":  # free-running
            self.pending.append(self._exposure(self.clock.now()))
        if self.stalled() or not self.pending:
            if math.isfinite(timeout_s):  # a real camera would block forever otherwise
                self.clock.sleep(timeout_s)
            raise TimeoutException(f"no buffer within {timeout_s:g} s")
        t0, exposure_s, roi, fmt, gain = self.pending[0]
        t_ready = t0 + exposure_s + self.readout_s
        if t_ready > self.clock.now() + timeout_s:
            self.clock.sleep(timeout_s)
            raise TimeoutException(f"no buffer within {timeout_s:g} s")
        self.pending.popleft()
        self.clock.sleep_until(t_ready)
        bits, dtype = PIXEL_FORMATS[fmt]
        frame = self.render(t0, exposure_s, roi, bits, gain)
        if not np.isnan(frame).any():  # a NaN frame is an injected fault: pass it as is
            frame = frame.astype(dtype)
        return frame, fmt, t0
