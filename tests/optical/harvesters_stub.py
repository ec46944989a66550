"""A stand-in for ``harvesters.core`` with one fake GenICam camera.

No GenTL producer can be installed here, so the GenICamCamera's *real* code path (lazy
import, producer discovery, device search by serial, node-map writes, fetch/queue) is
exercised against this stub, which records what the driver did. It follows harvesters
1.4: ``Harvester().add_file/update/device_info_list/create/reset``, node features with
``.value``/``.min``/``.max``/``.inc``/``.execute()``, ``fetch(timeout=s)`` returning a
buffer whose ``payload.components[0]`` has ``width``, ``height``, ``data`` (1-D), and a
``TimeoutException`` when nothing arrives.
"""

from __future__ import annotations

import types

import numpy as np


class TimeoutException(Exception):
    pass


class Node:
    def __init__(self, cam, name, value, lo=None, hi=None, inc=None):
        self.cam, self.name, self._value, self.min, self.max, self.inc = (
            cam,
            name,
            value,
            lo,
            hi,
            inc,
        )

    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, v):
        if self.min is not None and not self.min <= v <= self.max:
            raise ValueError(f"{self.name}={v} out of range")
        if self.cam.acquiring and self.name in (
            "Width",
            "Height",
            "OffsetX",
            "OffsetY",
            "PixelFormat",
        ):
            raise RuntimeError(f"{self.name} locked while acquiring")
        self.cam.writes.append((self.name, v))
        self._value = v

    def execute(self):
        self.cam.writes.append((self.name, "execute"))
        if self.cam.acquiring:
            self.cam.triggered += 1


class FakeCamera:
    def __init__(self, serial):
        self.serial, self.acquiring, self.triggered, self.writes = serial, False, 0, []
        n = {
            "ExposureTime": (10000.0, 20.0, 1e6, None),
            "Gain": (0.0, 0.0, 24.0, None),
            "Width": (640, 16, 640, 16),
            "Height": (480, 2, 480, 2),
            "OffsetX": (0, 0, 624, 16),
            "OffsetY": (0, 0, 478, 2),
            "WidthMax": (640,),
            "HeightMax": (480,),
            "PixelFormat": ("Mono8",),
            "TriggerMode": ("Off",),
            "TriggerSource": ("Software",),
            "TriggerSelector": ("FrameStart",),
            "AcquisitionMode": ("Continuous",),
            "TriggerSoftware": (None,),
            "DeviceFirmwareVersion": ("2.1.0",),
        }
        self.nodes = {k: Node(self, k, *v) for k, v in n.items()}


class Buffer:
    def __init__(self, cam):
        w, h = cam.nodes["Width"].value, cam.nodes["Height"].value
        data = (np.arange(w * h) % 251).astype(np.uint8)
        component = types.SimpleNamespace(width=w, height=h, data=data, data_format="Mono8")
        self.payload = types.SimpleNamespace(components=[component])
        self.queued = False

    def queue(self):
        self.queued = True


class ImageAcquirer:
    def __init__(self, cam):
        self.cam = cam
        self.remote_device = types.SimpleNamespace(node_map=types.SimpleNamespace(**cam.nodes))
        self.destroyed = False

    def start(self, *, run_as_thread=False):
        self.cam.acquiring = True

    def stop(self):
        self.cam.acquiring = False

    def fetch(self, *, timeout=0):
        if self.cam.triggered == 0:
            raise TimeoutException(f"no buffer in {timeout} s")
        self.cam.triggered -= 1
        return Buffer(self.cam)

    def destroy(self):
        self.destroyed = True


class Harvester:
    cameras = [FakeCamera("22334455"), FakeCamera("99887766")]
    instances: list = []

    def __init__(self):
        self.files, self.device_info_list, self.acquirers = [], [], []
        Harvester.instances.append(self)

    def add_file(self, path, check_existence=False, check_validity=False):
        self.files.append(path)

    def update(self):
        self.device_info_list = [
            types.SimpleNamespace(
                property_dict={"serial_number": c.serial, "model": "Fake-1", "vendor": "Stub",
                               "version": "1.0"}
            )
            for c in self.cameras
        ]  # fmt: skip

    def create(self, search_key=None, *, config=None):
        serial = search_key["serial_number"]
        cam = next(c for c in self.cameras if c.serial == serial)
        acquirer = ImageAcquirer(cam)
        self.acquirers.append(acquirer)
        return acquirer

    def reset(self):
        self.device_info_list = []


def install(monkeypatch, tmp_path):
    """Make ``from harvesters.core import Harvester`` return the stub; a fake .cti on the path."""
    import sys

    for cam in Harvester.cameras:
        cam.__init__(cam.serial)
    Harvester.instances.clear()
    core = types.ModuleType("harvesters.core")
    core.Harvester = Harvester
    core.TimeoutException = TimeoutException
    package = types.ModuleType("harvesters")
    package.core = core
    monkeypatch.setitem(sys.modules, "harvesters", package)
    monkeypatch.setitem(sys.modules, "harvesters.core", core)
    producer = tmp_path / "vendor.cti"
    producer.write_bytes(b"")
    monkeypatch.setenv("GENICAM_GENTL64_PATH", str(tmp_path))
    return Harvester
