"""A ``harvesters.core.Harvester`` look-alike over the simulated camera (see :mod:`.sim_camera`).

It offers what ``GenICamCamera`` uses of harvesters 1.4: ``add_file``, ``update``,
``device_info_list`` (with ``property_dict``), ``create(search_key)`` returning an
image acquirer with ``remote_device.node_map`` (features with ``value``/``min``/``max``/
``inc``/``execute()``), ``start``/``stop``/``fetch(timeout=s)``/``destroy``, and buffers
whose ``payload.components[0]`` carries ``width``, ``height`` and 1-D ``data``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from labpnn.mock_instruments.sim_camera import SimCameraCore


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
