"""A ``pypylon.pylon`` look-alike over the simulated camera (see :mod:`.sim_camera`).

It offers what ``BaslerCamera`` uses: ``TlFactory.GetInstance()`` with
``EnumerateDevices``/``CreateDevice``, ``InstantCamera`` with ``Open``/``Close``, feature
attributes (``.Value``/``.Min``/``.Max``/``.Inc``/``Execute()``), ``StartGrabbing``,
``ExecuteSoftwareTrigger``, ``RetrieveResult(ms, handling)`` and grab results with
``GrabSucceeded``/``GetArray``/``Release``, plus the timeout-handling constants.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labpnn.mock_instruments.sim_camera import SimCameraCore, TimeoutException


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
