"""BaslerCamera: Basler cameras through pypylon, Basler's own SDK binding.

``pip install pypylon`` bundles the pylon runtime, so no separate SDK install is needed
on Windows or Linux. With ``emulation: true`` (or ``PYLON_CAMEMU=1`` in the environment)
pylon also offers its camera emulator (serial ``0815-0000``, a moving test pattern,
~80 frames/s with software triggers here), which runs the real pypylon code path in CI.
The variable must be set before pypylon is first imported in the process.

``backend=`` replaces the ``pypylon.pylon`` module with any object of that shape; the
simulated optical world uses it to serve this class from its physics.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from labpnn.drivers.camera.base import is_timeout
from labpnn.drivers.camera.genicam_nodes import NodeMapCamera
from labpnn.errors import (
    ConfigError,
    DeviceLost,
    InstrumentError,
    InstrumentTimeout,
    MissingDependency,
)
from labpnn.settings import refuse_unknown_options


def import_pylon(emulation: bool = False):
    if emulation:
        os.environ["PYLON_CAMEMU"] = os.environ.get("PYLON_CAMEMU") or "1"
    try:
        from pypylon import pylon
    except ImportError:
        raise MissingDependency(
            "BaslerCamera needs pypylon: pip install pypylon (or pip install 'labpnn[camera]')"
        ) from None
    return pylon


def _pick(infos: list[Any], serial: str | None, label: str) -> Any:
    serials = [str(i.GetSerialNumber()) for i in infos]
    if serial is None:
        if infos:
            return infos[0]
        raise ConfigError(f"{label}: no Basler camera found (set PYLON_CAMEMU=1 for the emulator)")
    for info, found in zip(infos, serials):
        if found == serial:
            return info
    raise ConfigError(
        f"{label}: no Basler camera with serial {serial} found "
        f"(found: {', '.join(serials) or 'none'}; set PYLON_CAMEMU=1 for the emulator)"
    )


class BaslerCamera(NodeMapCamera):
    def __init__(
        self,
        label: str = "camera",
        limits: dict | None = None,
        *,
        serial: str | int | None = None,
        emulation: bool = False,
        backend: Any = None,
        clock: Any = None,
        exposure_s: float | None = None,
        gain_db: float | None = None,
        roi: Sequence[int] | None = None,
        pixel_format: str | None = None,
        timeout_s: float | None = None,
        **unknown: Any,
    ):
        super().__init__(label, limits, clock)
        refuse_unknown_options(label, type(self), unknown)
        self._pylon = backend if backend is not None else import_pylon(emulation)
        self._wanted = None if serial is None else str(serial)
        self._open()
        self._after_open(
            {"exposure_s": exposure_s, "gain_db": gain_db, "roi": roi,
             "pixel_format": pixel_format, "timeout_s": timeout_s}
        )  # fmt: skip

    def _open(self) -> None:
        factory = self._pylon.TlFactory.GetInstance()
        self._info = _pick(list(factory.EnumerateDevices()), self._wanted, self.label)
        self.serial = str(self._info.GetSerialNumber())
        try:
            self._cam = self._pylon.InstantCamera(factory.CreateDevice(self._info))
            self._cam.Open()
        except Exception as exc:
            raise DeviceLost(
                f"{self.label}: cannot open Basler camera {self.serial}: {exc}"
            ) from None

    # -- SDK primitives -------------------------------------------------------------------
    VALUE, MIN, MAX, INC = "Value", "Min", "Max", "Inc"  # pypylon's spelling

    def _node_map(self) -> Any:
        return self._cam

    def _has(self, name: str) -> bool:
        """pypylon may hand out a node this camera does not implement; only a read tells."""
        try:
            getattr(self._cam, name).Value  # noqa: B018 - unavailable features raise here
        except Exception:
            return False
        return True

    def _send_trigger(self) -> None:
        ms = max(1, int(self._timeout_s * 1000))
        try:
            self._cam.WaitForFrameTriggerReady(ms, self._pylon.TimeoutHandling_ThrowException)
            self._cam.ExecuteSoftwareTrigger()
        except Exception as exc:
            if is_timeout(exc):
                raise InstrumentTimeout(
                    f"{self.label}: camera {self.serial} was not ready for a trigger within "
                    f"{self._timeout_s:g} s"
                ) from None
            raise DeviceLost(
                f"{self.label}: trigger failed on camera {self.serial}: {exc}"
            ) from None

    def _start_stream(self) -> None:
        self._cam.StartGrabbing(self._pylon.GrabStrategy_OneByOne)

    def _stop_stream(self) -> None:
        self._cam.StopGrabbing()

    def _fetch(self, timeout_s: float) -> np.ndarray:
        try:
            result = self._cam.RetrieveResult(
                max(1, int(timeout_s * 1000)), self._pylon.TimeoutHandling_ThrowException
            )
        except Exception as exc:
            raise self._fetch_error(exc, timeout_s) from None
        try:
            if not result.GrabSucceeded():
                raise InstrumentError(
                    f"{self.label}: grab failed on camera {self.serial}: {result.ErrorDescription}"
                )
            return np.array(result.GetArray(), copy=True)
        finally:
            result.Release()

    def _close_device(self, release_sdk: bool = True) -> None:
        with contextlib.suppress(Exception):
            self._cam.Close()

    # -- instrument contract --------------------------------------------------------------
    def identity(self) -> dict[str, str]:
        firmware = ""
        for name in ("DeviceFirmwareVersion", "DeviceVersion"):
            if self._has(name):
                firmware = str(self._read(name))
                break
        return {
            "vendor": str(self._info.GetVendorName()),
            "model": str(self._info.GetModelName()),
            "serial": self.serial,
            "firmware": firmware,
        }

    @classmethod
    def check_available(cls, options: dict[str, Any]) -> None:
        pylon = import_pylon(bool(options.get("emulation", False)))
        serial = options.get("serial")
        devices = list(pylon.TlFactory.GetInstance().EnumerateDevices())
        _pick(devices, None if serial is None else str(serial), "camera")
