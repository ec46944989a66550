"""The loopback channel: thumbnails that keep saturation, sends that never block a run,
operator prompts answered or timed out, and the pause flag."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from labpnn import live
from labpnn.data_hooks import DataHooks
from labpnn.operator import OperatorUnavailable


class FakeWriter:
    path = "/tmp/run.h5"

    def __init__(self):
        self.listeners = []


class FakeStation:
    name = "bench"

    def __init__(self, **instruments):
        self.instruments = instruments

    def __contains__(self, role):
        return role in self.instruments

    def __getitem__(self, role):
        return self.instruments[role]


class Camera12Bit:
    bits = 12


class HookedCamera(Camera12Bit):
    def __init__(self):
        self.data_hooks = DataHooks()


class HookedVNA:
    def __init__(self):
        self.data_hooks = DataHooks()


class Slm:
    def __init__(self):
        self.hooks = []

    def add_present_hook(self, hook):
        self.hooks.append(hook)


def wait_sent(publisher, n, timeout_s=5.0):
    """Until the publisher has counted ``n`` sends: its thread counts one after the message
    is out, so a receiver can see it first."""
    end = time.monotonic() + timeout_s
    while publisher.sent < n and time.monotonic() < end:
        time.sleep(0.01)
    assert publisher.sent >= n


def drain_until(server, predicate, timeout_s=5.0):
    got = []
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        got += server.drain()
        if predicate(got):
            return got
        time.sleep(0.02)
    return got


def assert_silent_once_the_run_records(publisher, writer, kind, name, recorded, drive):
    """After the run records a ``kind`` stream of its own, ``drive()`` (the driver handing
    its data hook another payload) publishes nothing."""
    for listener in writer.listeners:
        listener(kind, name, recorded)
    sent = publisher.sent
    publisher._last.clear()  # no rate limit in the way
    drive()
    time.sleep(0.1)  # what the publishing thread would send, it has sent by now
    assert publisher.sent == sent


def test_a_1024_px_frame_arrives_as_a_256_px_thumbnail_that_keeps_its_saturated_pixel():
    server = live.LiveServer()
    try:
        writer = FakeWriter()
        live.attach_publisher(writer, FakeStation(camera=Camera12Bit()), server.address, "r1")
        frame = np.zeros((1024, 1024), dtype=np.uint16)
        frame[517, 300] = 4095  # one saturated pixel of a 12-bit camera
        for listener in writer.listeners:
            listener("frame", "camera", frame)
        got = drain_until(server, lambda m: any(x.type == "frame" for x in m))
        hello = next(m for m in got if m.type == "hello")
        assert hello.header["run_id"] == "r1"
        msg = next(m for m in got if m.type == "frame")
        assert msg.array.shape == (256, 256)
        assert msg.header["full_scale"] == 4095
        assert msg.header["saturated"] == 1
        assert msg.array.max() == 4095  # max-pooling kept it
    finally:
        server.close()


def test_sends_never_block_and_frames_are_rate_limited_when_nobody_listens():
    publisher = live.Publisher("tcp://127.0.0.1:9", "r2", max_hz=30)  # nothing listens there
    frame = np.ones((256, 256), dtype=np.uint16)
    # A blocking send would hang here until pytest's timeout: finishing is the check.
    for i in range(3000):
        publisher("frame", "camera", frame)
        publisher("row", "results", {"step": i})
    publisher.close()
    # frames beyond 30 Hz never reach the socket; what does, with nobody there, is dropped
    assert publisher.sent + publisher.dropped < 3000 + 3000
    assert publisher.dropped > 0


def test_slm_presented_frames_are_forwarded_through_the_driver_hook():
    server = live.LiveServer()
    try:
        slm = Slm()
        live.attach_publisher(FakeWriter(), FakeStation(slm=slm), server.address, "r3")
        assert slm.hooks, "the publisher registered no present hook"
        slm.hooks[0](np.arange(512 * 512, dtype=np.uint32).reshape(512, 512) % 256, 0.0)
        got = drain_until(server, lambda m: any(x.type == "slm" for x in m))
        msg = next(m for m in got if m.type == "slm")
        assert msg.array.shape == (256, 256)
    finally:
        server.close()


def test_operator_request_gets_the_gui_answer_or_a_clear_timeout():
    server = live.LiveServer()
    try:

        def answer_once():
            got = drain_until(server, lambda m: any(x.type == "operator" for x in m))
            request = next(m for m in got if m.type == "operator")
            assert request.header["request"]["prompt"] == "Connect the SHORT standard to port 1."
            server.reply(request, {"ok": True, "value": "done"})

        thread = threading.Thread(target=answer_once)
        thread.start()
        answer = live.ask_operator(
            {"text": "Connect the SHORT standard to port 1."}, 10, server.address
        )
        thread.join()
        assert answer["ok"] and answer["value"] == "done"
        with pytest.raises(OperatorUnavailable, match="within 0.3 s"):
            live.ask_operator({"prompt": "Nobody is there"}, 0.3, server.address)
    finally:
        server.close()


def test_operator_request_without_a_gui_explains_what_to_do(monkeypatch):
    monkeypatch.delenv("LABPNN_LIVE", raising=False)
    with pytest.raises(OperatorUnavailable, match="labpnn gui"):
        live.ask_operator({"prompt": "Connect the LOAD"}, 1)


def test_pause_flag_holds_a_step_until_resumed():
    live.request_pause("r4")
    threading.Timer(0.4, live.request_resume, args=("r4",)).start()
    beats = []
    paused = live.hold_while_paused("r4", lambda: False, lambda: beats.append(1), poll_s=0.05)
    assert paused >= 0.3
    assert beats, "the watchdog was not fed while paused"
    assert live.hold_while_paused("r4", lambda: False) == 0.0


def test_camera_frames_reach_the_live_view_until_the_run_records_its_own():
    """Training records no frames, yet the operator wants to see the camera; a calibration
    records (pooled) frames, and the raw ones must then stop, or the view flicks."""
    server = live.LiveServer()
    try:
        camera, writer = HookedCamera(), FakeWriter()
        publisher = live.attach_publisher(writer, FakeStation(camera=camera), server.address, "r4")
        camera.data_hooks("frame", np.full((64, 64), 7, dtype=np.uint16))
        got = drain_until(server, lambda m: any(x.type == "frame" for x in m))
        wait_sent(publisher, 2)  # hello and the driver's picture
        msg = next(m for m in got if m.type == "frame")
        assert msg.header["name"] == "camera" and msg.array.shape == (64, 64)
        assert_silent_once_the_run_records(
            publisher, writer, "frame", "camera", np.zeros((16, 16), dtype=np.uint16),
            lambda: camera.data_hooks("frame", np.full((64, 64), 7, dtype=np.uint16)),
        )  # fmt: skip
    finally:
        server.close()


def test_vna_sweeps_reach_the_live_view_as_spectra_with_their_frequency_axis():
    server = live.LiveServer()
    try:
        vna, writer = HookedVNA(), FakeWriter()
        publisher = live.attach_publisher(writer, FakeStation(vna=vna), server.address, "r5")
        f_hz = np.linspace(2e9, 2.5e9, 201)
        vna.data_hooks("spectrum", (f_hz, {"S21": np.full(201, 0.1 + 0.2j)}))
        got = drain_until(server, lambda m: any(x.type == "trace" for x in m))
        wait_sent(publisher, 2)  # hello and the driver's picture
        msg = next(m for m in got if m.type == "trace")
        assert msg.header["name"] == "s21" and msg.header["x_unit"] == "Hz"
        assert msg.header["x"][-1] == 2.5e9 and np.iscomplexobj(msg.array)
        assert_silent_once_the_run_records(  # the run records its own (corrected) traces
            publisher, writer, "trace", "s21", np.zeros(201, complex),
            lambda: vna.data_hooks("spectrum", (f_hz, {"S21": np.full(201, 0.1 + 0.2j)})),
        )  # fmt: skip
    finally:
        server.close()


def test_a_two_port_sweep_shows_its_transmission_not_the_last_trace():
    server = live.LiveServer()
    try:
        vna, writer = HookedVNA(), FakeWriter()
        publisher = live.attach_publisher(writer, FakeStation(vna=vna), server.address, "r6")
        f_hz = np.linspace(2e9, 2.5e9, 11)
        traces = {p: np.full(11, 0.1 + 0.2j) for p in ("S11", "S21", "S12", "S22")}
        sent = publisher.sent
        vna.data_hooks("spectrum", (f_hz, traces))
        got = drain_until(server, lambda m: any(x.type == "trace" for x in m))
        wait_sent(publisher, sent + 1)
        time.sleep(0.1)
        got += server.drain()
        assert [m.header["name"] for m in got if m.type == "trace"] == ["s21"]
        assert publisher.sent == sent + 1
    finally:
        server.close()
