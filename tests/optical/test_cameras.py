"""Camera drivers: the harvesters path against a stub, the pypylon path against pylon's emulator."""

from __future__ import annotations

import numpy as np
import pytest

from labpnn.clock import VirtualClock
from labpnn.drivers.camera import BaslerCamera, GenICamCamera
from labpnn.errors import (
    ConfigError,
    InstrumentError,
    InstrumentTimeout,
    LimitError,
    MissingDependency,
)

from . import harvesters_stub


def test_genicam_driver_speaks_harvesters(monkeypatch, tmp_path):
    stub = harvesters_stub.install(monkeypatch, tmp_path)
    clock = VirtualClock()
    cam = GenICamCamera(
        "camera", {"exposure_s": [1e-5, 0.1]}, serial="99887766", clock=clock,
        exposure_s=0.002, roi=[16, 4, 64, 32], pixel_format="Mono8",
    )  # fmt: skip
    harvester = stub.instances[-1]
    assert harvester.files[-1].endswith("vendor.cti")  # found on GENICAM_GENTL64_PATH
    fake = stub.cameras[1]
    assert ("ExposureTime", pytest.approx(2000.0)) in fake.writes  # µs on the wire
    roi_writes = [w for w in fake.writes if w[0] in ("Width", "Height", "OffsetX", "OffsetY")]
    assert roi_writes[-2:] == [("OffsetX", 16), ("OffsetY", 4)]  # offsets last
    assert cam.roi == (16, 4, 64, 32)
    assert cam.identity() == {
        "vendor": "Stub",
        "model": "Fake-1",
        "serial": "99887766",
        "firmware": "2.1.0",
    }

    t = cam.trigger(at=0.5)
    assert t == 0.5 and clock.now() == 0.5  # software trigger waits for `at`
    assert ("TriggerMode", "On") in fake.writes and ("TriggerSoftware", "execute") in fake.writes
    assert cam.wait_exposure_end() == pytest.approx(0.502)
    seen = []
    cam.data_hooks.add(lambda kind, frame: seen.append((kind, frame)))  # the GUI's live view
    cam.data_hooks.add(lambda kind, frame: 1 / 0)  # a broken viewer never breaks the read
    frame, t_start = cam.read()
    assert frame.shape == (32, 64) and frame.dtype == np.uint8 and t_start == 0.5
    assert len(seen) == 1 and seen[0][0] == "frame" and seen[0][1] is frame

    with pytest.raises(InstrumentTimeout, match="camera 99887766 delivered no frame within 0.1 s"):
        cam.read(timeout_s=0.1)  # not triggered
    cam.safe_state()
    assert not fake.acquiring
    cam.close()
    assert harvester.acquirers[-1].destroyed


def test_genicam_refuses_what_the_device_or_the_lab_cannot_do(monkeypatch, tmp_path):
    harvesters_stub.install(monkeypatch, tmp_path)
    cam = GenICamCamera("camera", {"exposure_s": [1e-5, 0.1]}, serial="22334455")
    with pytest.raises(
        LimitError, match=r"camera: exposure_s=0.5 s is outside the lab limit 1e-05..0.1 s"
    ):
        cam.exposure_s = 0.5
    with pytest.raises(LimitError, match=r"exposure_s=1e-05 s is outside this camera's 2e-05..1 s"):
        cam.exposure_s = 1e-5
    with pytest.raises(LimitError, match="does not fit the 640x480 px sensor"):
        cam.roi = (600, 0, 64, 64)
    with pytest.raises(LimitError, match="Width=60 must be a multiple of 16"):
        cam.roi = (0, 0, 60, 64)
    with pytest.raises(LimitError, match="pixel_format=Mono10 is not one of"):
        cam.pixel_format = "Mono10"
    assert cam.exposure_s == pytest.approx(0.01)  # nothing was sent
    cam.close()


def test_genicam_says_what_is_missing(monkeypatch, tmp_path):
    harvesters_stub.install(monkeypatch, tmp_path)
    with pytest.raises(
        ConfigError, match="no camera with serial 123 found .found: 22334455, 99887766"
    ):
        GenICamCamera.check_available({"serial": "123"})
    GenICamCamera.check_available({"serial": "22334455"})
    monkeypatch.setenv("GENICAM_GENTL64_PATH", str(tmp_path / "nothing-here"))
    with pytest.raises(MissingDependency, match="no GenTL producer"):
        GenICamCamera.check_available({"serial": "22334455"})
    monkeypatch.setitem(__import__("sys").modules, "harvesters.core", None)
    with pytest.raises(MissingDependency, match="pip install harvesters"):
        GenICamCamera("camera", serial="22334455")


def test_basler_emulator_through_real_pypylon():
    """pylon's own camera emulator (PYLON_CAMEMU, set in conftest) on the real pypylon path."""
    cam = BaslerCamera("camera", {"exposure_s": [1e-5, 0.1]}, serial="0815-0000", emulation=True)
    try:
        assert cam.identity()["model"] == "Emulation" and cam.identity()["vendor"] == "Basler"
        cam.pixel_format = "Mono12"
        cam.roi = (8, 4, 64, 48)
        cam.exposure_s = 0.001
        assert cam.exposure_s == pytest.approx(0.001)
        frames = [cam.grab(timeout_s=2.0)[0] for _ in range(3)]
        assert all(f.shape == (48, 64) and f.dtype == np.uint16 for f in frames)
        assert 0 < max(int(f.max()) for f in frames) <= 4095
        with pytest.raises(InstrumentTimeout, match="delivered no frame within 0.05 s"):
            cam.read(timeout_s=0.05)  # nothing triggered
        with pytest.raises(LimitError, match="outside the lab limit"):
            cam.exposure_s = 0.2
        with pytest.raises(ConfigError, match="no Basler camera with serial nope"):
            BaslerCamera.check_available({"serial": "nope", "emulation": True})
    finally:
        cam.close()


def test_basler_and_genicam_drivers_see_the_same_simulated_world(station):
    """The same world behind both SDK shapes gives the same frames for the same seed."""
    frames = {}
    for driver in ("GenICamCamera", "BaslerCamera"):
        st = station(f"instruments.camera.driver=labpnn.drivers.camera.{driver}", small=True)
        cam = st["camera"]
        assert type(cam).__name__ == driver
        frames[driver] = [cam.grab()[0] for _ in range(3)]
        assert cam.identity()["serial"] == "22334455"
    for a, b in zip(frames["GenICamCamera"], frames["BaslerCamera"]):
        np.testing.assert_array_equal(a, b)


def test_exposure_outside_the_station_limits_is_refused(station):
    st = station(small=True)
    with pytest.raises(LimitError) as err:
        st["camera"].exposure_s = 0.5
    assert str(err.value) == (
        "camera: exposure_s=0.5 s is outside the lab limit 1e-05..0.1 s set in the station config"
    )
    assert st["camera"].exposure_s == pytest.approx(0.002)


def test_reconnect_restores_the_settings(station):
    st = station(small=True)
    cam = st["camera"]
    cam.exposure_s = 0.001
    cam.roi = (4, 2, 16, 8)
    cam.grab()
    cam.reconnect()
    assert cam.exposure_s == pytest.approx(0.001) and cam.roi == (4, 2, 16, 8)
    frame, _ = cam.grab()
    assert frame.shape == (8, 16) and cam.full_scale == 4095


def test_a_typo_in_the_station_file_is_refused(station):
    from labpnn.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown option.s. exposure for GenICamCamera; known: "):
        station("instruments.camera.exposure=0.01", small=True)
    with pytest.raises(ConfigError, match="unknown option.s. refresh for ScreenSLM"):
        station("instruments.slm.refresh=60", small=True)


def test_a_failing_genicam_read_names_the_camera_and_the_feature(monkeypatch, tmp_path):
    stub = harvesters_stub.install(monkeypatch, tmp_path)

    class Broken:
        @property
        def value(self):
            raise RuntimeError("GenTL error -1011")

    monkeypatch.setitem(stub.cameras[0].nodes, "DeviceTemperature", Broken())
    cam = GenICamCamera("camera", serial="22334455")
    with pytest.raises(InstrumentError, match="camera: cannot read DeviceTemperature: GenTL error"):
        cam._read("DeviceTemperature")
    cam.close()
