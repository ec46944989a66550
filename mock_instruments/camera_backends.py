"""A simulated GenICam camera, served through harvesters-shaped and pypylon-shaped objects.

The camera drivers (``labpnn.drivers.camera``) take an SDK entry point as ``backend``:
a ``harvesters.core.Harvester`` for :class:`GenICamCamera`, the ``pypylon.pylon`` module
for :class:`BaslerCamera`. On hardware they import the real ones; in simulation the
optical world hands them :class:`SimHarvester` or :class:`SimPylon`, which expose the
subset of those APIs the drivers use, over one :class:`SimCameraCore`: the device's
features (GenICam names and units, e.g. ``ExposureTime`` in µs), its software-trigger
queue and its frame timing. Frames are rendered by the world when they are fetched,
from the SLM history and the medium at the exposure's own time.
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


# -- harvesters-shaped ------------------------------------------------------------------
class _HNode:
    def __init__(self, core: SimCameraCore, name: str):
        self._core, self._name = core, name

    @property
    def value(self) -> Any:
        return self._core.get(self._name)

    @value.setter
    def value(self, v: Any) -> None:
        self._core.set(self._name, v)

    @property
    def min(self):
        return self._core.bounds(self._name)[0]

    @property
    def max(self):
        return self._core.bounds(self._name)[1]

    @property
    def inc(self):
        return self._core.bounds(self._name)[2]

    @property
    def symbolics(self) -> tuple[str, ...]:
        return self._core.spec[self._name][1]

    def execute(self) -> None:
        self._core.execute(self._name)


class _HNodeMap:
    def __init__(self, core: SimCameraCore):
        self._core = core

    def __getattr__(self, name: str) -> _HNode:
        if name.startswith("_") or not self._core.has(name):
            raise AttributeError(name)
        return _HNode(self._core, name)

    def has_node(self, name: str) -> bool:
        return self._core.has(name)


class _HComponent:
    def __init__(self, frame: np.ndarray, fmt: str):
        self.height, self.width = frame.shape
        self.data = frame.reshape(-1)
        self.data_format = fmt


class _HBuffer:
    def __init__(self, frame: np.ndarray, fmt: str, t0: float):
        self.payload = type("Payload", (), {"components": [_HComponent(frame, fmt)]})()
        self.timestamp_ns = int(t0 * 1e9)

    def queue(self) -> None:
        pass

    def __enter__(self) -> _HBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.queue()


class _HDeviceInfo:
    def __init__(self, core: SimCameraCore):
        v = core.values
        self.serial_number = v["DeviceSerialNumber"]
        self.model = v["DeviceModelName"]
        self.vendor = v["DeviceVendorName"]
        self.version = v["DeviceFirmwareVersion"]
        self.id_ = f"sim-{self.serial_number}"

    @property
    def property_dict(self) -> dict[str, str]:
        return dict(vars(self))


class _HImageAcquirer:
    def __init__(self, core: SimCameraCore):
        self._core = core
        self.remote_device = type("RemoteDevice", (), {"node_map": _HNodeMap(core)})()

    def start(self, *, run_as_thread: bool = False) -> None:
        self._core.start()

    def stop(self) -> None:
        self._core.stop()

    def is_acquiring(self) -> bool:
        return self._core.streaming

    def fetch(self, *, timeout: float = 0, is_raw: bool = False, cycle_s: float | None = None):
        return _HBuffer(*self._core.fetch(timeout if timeout > 0 else math.inf))

    def destroy(self) -> None:
        self._core.stop()


class SimHarvester:
    """Looks like ``harvesters.core.Harvester`` with one GenTL device attached."""

    def __init__(self, core: SimCameraCore):
        self._core = core
        self.files: list[str] = []
        self.device_info_list: list[_HDeviceInfo] = []

    def add_file(self, file_path: str, check_existence: bool = False, check_validity=False):
        self.files.append(str(file_path))

    def update(self) -> None:
        self.device_info_list = [_HDeviceInfo(self._core)]

    def create(self, search_key: Any = None, *, config: Any = None) -> _HImageAcquirer:
        if isinstance(search_key, dict):
            info = self.device_info_list[0]
            for key, want in search_key.items():
                if want and getattr(info, key, None) != want:
                    raise ValueError("no device found: provide sufficient search key")
        elif search_key not in (None, 0):
            raise ValueError("undefined search key given: provide valid search key")
        return _HImageAcquirer(self._core)

    def reset(self) -> None:
        self.device_info_list = []


# -- pypylon-shaped ---------------------------------------------------------------------
class _PNode:
    def __init__(self, core: SimCameraCore, name: str):
        self._core, self._name = core, name

    @property
    def Value(self) -> Any:  # noqa: N802 - pypylon's spelling
        return self._core.get(self._name)

    @Value.setter
    def Value(self, v: Any) -> None:  # noqa: N802
        self._core.set(self._name, v)

    @property
    def Min(self):  # noqa: N802
        return self._core.bounds(self._name)[0]

    @property
    def Max(self):  # noqa: N802
        return self._core.bounds(self._name)[1]

    @property
    def Inc(self):  # noqa: N802
        return self._core.bounds(self._name)[2]

    @property
    def Symbolics(self) -> tuple[str, ...]:  # noqa: N802
        return self._core.spec[self._name][1]

    def Execute(self) -> None:  # noqa: N802
        self._core.execute(self._name)


class _PDeviceInfo:
    def __init__(self, core: SimCameraCore | None = None):
        v = core.values if core else {}
        self._serial = v.get("DeviceSerialNumber", "")
        self._model = v.get("DeviceModelName", "")
        self._vendor = v.get("DeviceVendorName", "")

    def SetSerialNumber(self, serial: str) -> None:  # noqa: N802
        self._serial = str(serial)

    def GetSerialNumber(self) -> str:  # noqa: N802
        return self._serial

    def GetModelName(self) -> str:  # noqa: N802
        return self._model

    def GetVendorName(self) -> str:  # noqa: N802
        return self._vendor

    def GetDeviceClass(self) -> str:  # noqa: N802
        return "labpnnSimCamera"


class _PGrabResult:
    def __init__(self, frame: np.ndarray | None, t0: float = 0.0):
        self._frame, self.TimeStamp = frame, int(t0 * 1e9)
        self.ErrorDescription = "" if frame is not None else "timeout"

    def IsValid(self) -> bool:  # noqa: N802
        return self._frame is not None

    def GrabSucceeded(self) -> bool:  # noqa: N802
        return self._frame is not None

    def GetArray(self) -> np.ndarray:  # noqa: N802
        return self._frame

    def Release(self) -> None:  # noqa: N802
        pass


class _PInstantCamera:
    def __init__(self, device: tuple[SimCameraCore, Any]):
        self._core, self._pylon = device
        self._open = False

    def __getattr__(self, name: str) -> _PNode:
        core = self.__dict__.get("_core")
        if name.startswith("_") or core is None or not core.has(name):
            raise AttributeError(name)
        return _PNode(core, name)

    def Open(self) -> None:  # noqa: N802
        self._open = True

    def Close(self) -> None:  # noqa: N802
        self._core.stop()
        self._open = False

    def IsOpen(self) -> bool:  # noqa: N802
        return self._open

    def GetDeviceInfo(self) -> _PDeviceInfo:  # noqa: N802
        return _PDeviceInfo(self._core)

    def StartGrabbing(self, *args: Any) -> None:  # noqa: N802
        self._core.start()

    def StopGrabbing(self) -> None:  # noqa: N802
        self._core.stop()

    def IsGrabbing(self) -> bool:  # noqa: N802
        return self._core.streaming

    def WaitForFrameTriggerReady(self, timeout_ms: int, handling: int = 0) -> bool:  # noqa: N802
        return True

    def ExecuteSoftwareTrigger(self) -> None:  # noqa: N802
        self._core.execute("TriggerSoftware")

    def RetrieveResult(self, timeout_ms: int, handling: int = 0) -> _PGrabResult:  # noqa: N802
        try:
            frame, _fmt, t0 = self._core.fetch(timeout_ms / 1000.0)
        except TimeoutException:
            if handling == SimPylon.TimeoutHandling_Return:
                return _PGrabResult(None)
            raise
        return _PGrabResult(frame, t0)


class SimPylon:
    """Looks like the ``pypylon.pylon`` module with one camera attached."""

    TimeoutHandling_ThrowException = 0
    TimeoutHandling_Return = 1
    GrabStrategy_OneByOne = 0
    GrabStrategy_LatestImageOnly = 1
    TimeoutException = TimeoutException
    DeviceInfo = _PDeviceInfo

    def __init__(self, core: SimCameraCore):
        self._core = core
        pylon = self

        class TlFactory:
            @staticmethod
            def GetInstance():  # noqa: N802
                return TlFactory

            @staticmethod
            def EnumerateDevices():  # noqa: N802
                return [_PDeviceInfo(core)]

            @staticmethod
            def CreateDevice(info):  # noqa: N802
                if info.GetSerialNumber() not in ("", core.values["DeviceSerialNumber"]):
                    raise RuntimeError(f"no device with serial {info.GetSerialNumber()}")
                return core, pylon

            @staticmethod
            def CreateFirstDevice(info=None):  # noqa: N802
                return TlFactory.CreateDevice(info or _PDeviceInfo())

        self.TlFactory = TlFactory

    def InstantCamera(self, device) -> _PInstantCamera:  # noqa: N802
        return _PInstantCamera(device)
