"""GenICamCamera: any GenICam camera through harvesters and its vendor's GenTL producer.

harvesters (``pip install harvesters``) loads a vendor's GenTL producer (a ``.cti``
file shipped with the camera SDK: Basler, FLIR/Spinnaker, Allied Vision Vimba, IDS,
Matrix Vision mvGenTL...) and exposes the camera's standard features. The producer is
found from the ``cti:`` option (a path or list of paths) or, as GenTL specifies, from
the directories in ``GENICAM_GENTL64_PATH``.

``backend=`` replaces ``harvesters.core.Harvester()`` with any object of that shape; the
simulated optical world uses it to serve this same class from its physics.
"""

from __future__ import annotations

import contextlib
import glob
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from labpnn.drivers.camera.genicam_nodes import NodeMapCamera
from labpnn.errors import ConfigError, DeviceLost, MissingDependency
from labpnn.settings import refuse_unknown_options

INSTALL = "pip install harvesters (or pip install 'labpnn[camera]')"


def find_producers(cti: str | Sequence[str] | None = None) -> list[str]:
    """GenTL producer files: the configured ones, else those on GENICAM_GENTL64_PATH."""
    if cti:
        files = [cti] if isinstance(cti, str) else list(cti)
        missing = [f for f in files if not os.path.isfile(f)]
        if missing:
            raise ConfigError(f"GenTL producer file(s) not found: {', '.join(missing)}")
        return files
    found: list[str] = []
    for folder in os.environ.get("GENICAM_GENTL64_PATH", "").split(os.pathsep):
        if folder:
            found += sorted(glob.glob(os.path.join(folder, "*.cti")))
    return found


def _real_harvester(cti: str | Sequence[str] | None):
    try:
        from harvesters.core import Harvester
    except ImportError:
        raise MissingDependency(f"GenICamCamera needs harvesters: {INSTALL}") from None
    producers = find_producers(cti)
    if not producers:
        raise MissingDependency(
            "no GenTL producer (.cti) found: install your camera vendor's SDK, which sets "
            "GENICAM_GENTL64_PATH, or give its path as 'cti:' in the station config"
        )
    harvester = Harvester()
    for path in producers:
        harvester.add_file(path)
    return harvester


def _field(info: Any, key: str) -> str:
    """A device-info property (harvesters keeps them in ``property_dict``)."""
    props = getattr(info, "property_dict", None)
    if isinstance(props, dict) and props.get(key) is not None:
        return str(props[key])
    return str(getattr(info, key, "") or "")


def _pick(infos: list[Any], serial: str | None, label: str) -> Any:
    serials = [_field(i, "serial_number") for i in infos]
    if serial is None:
        if not infos:
            raise ConfigError(f"{label}: no GenICam camera found")
        return infos[0]
    for info, found in zip(infos, serials):
        if found == str(serial):
            return info
    raise ConfigError(
        f"{label}: no camera with serial {serial} found (found: {', '.join(serials) or 'none'})"
    )


class GenICamCamera(NodeMapCamera):
    def __init__(
        self,
        label: str = "camera",
        limits: dict | None = None,
        *,
        serial: str | int | None = None,
        cti: str | Sequence[str] | None = None,
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
        self._owns_harvester = backend is None
        self._harvester = backend if backend is not None else _real_harvester(cti)
        self._wanted = None if serial is None else str(serial)
        self._open()
        self._after_open(
            {"exposure_s": exposure_s, "gain_db": gain_db, "roi": roi,
             "pixel_format": pixel_format, "timeout_s": timeout_s}
        )  # fmt: skip

    def _open(self) -> None:
        self._harvester.update()
        self._info = _pick(list(self._harvester.device_info_list), self._wanted, self.label)
        self.serial = _field(self._info, "serial_number") or (self._wanted or "")
        try:
            key = {"serial_number": self.serial} if self._wanted else 0
            self._acquirer = self._harvester.create(key)
        except Exception as exc:
            raise DeviceLost(f"{self.label}: cannot open camera {self.serial}: {exc}") from None
        self._nodes = self._acquirer.remote_device.node_map

    # -- SDK primitives -------------------------------------------------------------------
    def _node_map(self) -> Any:
        return self._nodes

    def _send_trigger(self) -> None:
        self._node("TriggerSoftware").execute()

    def _start_stream(self) -> None:
        self._acquirer.start()

    def _stop_stream(self) -> None:
        self._acquirer.stop()

    def _fetch(self, timeout_s: float) -> np.ndarray:
        try:
            buffer = self._acquirer.fetch(timeout=timeout_s)
        except Exception as exc:
            raise self._fetch_error(exc, timeout_s) from None
        try:
            component = buffer.payload.components[0]
            return np.array(component.data, copy=True).reshape(component.height, component.width)
        finally:
            buffer.queue()

    def _close_device(self, release_sdk: bool = True) -> None:
        with contextlib.suppress(Exception):
            self._acquirer.destroy()
        if self._owns_harvester and release_sdk:
            with contextlib.suppress(Exception):
                self._harvester.reset()

    # -- instrument contract --------------------------------------------------------------
    def identity(self) -> dict[str, str]:
        firmware = _field(self._info, "version")
        if self._has("DeviceFirmwareVersion"):
            with contextlib.suppress(Exception):
                firmware = self._read("DeviceFirmwareVersion")
        return {
            "vendor": _field(self._info, "vendor"),
            "model": _field(self._info, "model"),
            "serial": self.serial,
            "firmware": str(firmware),
        }

    @classmethod
    def check_available(cls, options: dict[str, Any]) -> None:
        """Raise MissingDependency or ConfigError unless the configured camera is present."""
        harvester = _real_harvester(options.get("cti"))
        try:
            harvester.update()
            serial = options.get("serial")
            _pick(
                list(harvester.device_info_list), None if serial is None else str(serial), "camera"
            )
        finally:
            with contextlib.suppress(Exception):
                harvester.reset()
