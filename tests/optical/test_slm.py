"""ScreenSLM: phase -> grey, timing, safe state, and the real Qt window under offscreen."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from labpnn.clock import VirtualClock
from labpnn.drivers.slm import ScreenSLM
from labpnn.errors import ConfigError, InstrumentTimeout, LimitError


def _slm(**kw):
    options = {"resolution": [64, 32], "display": "memory", "clock": VirtualClock()} | kw
    return ScreenSLM("slm", **options)


def test_phase_maps_linearly_to_grey_and_wraps():
    slm = _slm()
    phases = np.array([0, np.pi / 2, np.pi, 3 * np.pi / 2, 2 * np.pi, -np.pi / 2, 2 * np.pi - 1e-3])
    np.testing.assert_array_equal(slm.phase_to_grey(phases), [0, 64, 128, 192, 0, 192, 0])


def test_a_measured_lut_is_inverted():
    lut = 2 * np.pi * (np.arange(256) / 256) ** 1.1  # a panel that lags at low grey
    slm = _slm(phase_lut=lut)
    grey = slm.phase_to_grey(lut[[10, 100, 200]] + 1e-4)
    np.testing.assert_array_equal(grey, [10, 100, 200])
    with pytest.raises(ConfigError, match="256 phases"):
        _slm(phase_lut=[0.0, 1.0])


def test_show_returns_the_next_vsync_and_ready_at_adds_settling():
    clock = VirtualClock(1.001)
    seen = []
    slm = _slm(clock=clock, refresh_hz=100, settle_time_s=0.02, latency_s=0.003)
    slm.add_present_hook(lambda grey, t: seen.append((grey, t)))
    t = slm.show(np.full((4, 8), np.pi))  # a coarse grid fills blocks of the panel
    assert t == pytest.approx(1.01 + 0.003) and clock.now() == 1.001  # returns at once
    assert slm.ready_at == pytest.approx(1.033)
    grey, t_hook = seen[-1]
    assert t_hook == t and grey.shape == (32, 64) and (grey == 128).all()
    with pytest.raises(LimitError, match="does not fit the 32x64"):
        slm.show(np.zeros((5, 5)))
    with pytest.raises(
        LimitError, match="refresh_hz=5000 Hz is outside this ScreenSLM's 1..1000 Hz"
    ):
        slm.refresh_hz = 5000


def test_safe_state_blanks_the_panel():
    slm = _slm()
    seen = []
    slm.add_present_hook(lambda grey, t: seen.append(grey))
    slm.show_grey(np.full((32, 64), 77, dtype=np.uint8))
    slm.safe_state()
    assert not seen[-1].any() and not slm.last_frame.any()
    assert slm.identity()["model"] == "screen SLM 64x32"


def test_offscreen_qt_window_presents_what_was_shown(qapp):
    slm = ScreenSLM("slm", resolution=[96, 48], display="offscreen", clock=VirtualClock())
    try:
        seen = []
        slm.add_present_hook(lambda grey, t: seen.append(grey))
        pattern = np.random.default_rng(0).uniform(0, 2 * np.pi, (48, 96))
        slm.show(pattern)
        # read back from the painted window (QWidget.grab), not the array we gave
        np.testing.assert_array_equal(seen[-1], slm.phase_to_grey(pattern))
        assert seen[-1] is not slm.phase_to_grey(pattern) and seen[-1].shape == (48, 96)
        assert "offscreen window" in slm.identity()["firmware"]
        slm.safe_state()
        assert not seen[-1].any()
    finally:
        slm.close()


def test_offscreen_qt_window_accepts_frames_from_a_worker_thread(qapp, qtbot):
    """A procedure in a worker thread, the Qt loop in the main thread: frames are marshalled."""
    slm = ScreenSLM("slm", resolution=[32, 32], display="offscreen", clock=VirtualClock())
    try:
        done = {}

        def procedure():
            slm.show_grey(np.full((32, 32), 200, dtype=np.uint8))
            done["frame"] = slm.last_frame.copy()

        worker = threading.Thread(target=procedure)
        worker.start()
        qtbot.waitUntil(lambda: "frame" in done, timeout=5000)  # runs the Qt event loop
        worker.join()
        assert (done["frame"] == 200).all()

        slm._display.timeout_s = 0.2
        errors = []

        def blocked():
            try:
                slm.show_grey(np.zeros((32, 32), dtype=np.uint8))
            except InstrumentTimeout as exc:
                errors.append(str(exc))

        worker = threading.Thread(target=blocked)
        worker.start()
        worker.join()  # the main thread does not run the event loop meanwhile
        assert errors and "is its event loop running?" in errors[0]
        qapp.processEvents()
    finally:
        slm.close()


def test_simulated_station_can_use_the_real_qt_window(station, qapp):
    st = station("bench.simulation.slm_display=offscreen", small=True)
    from labpnn.bench import make_bench

    bench = make_bench(st)
    frames_qt = bench.acquire(np.zeros((2, 8, 8)))
    memory = station(small=True)
    np.testing.assert_array_equal(frames_qt, make_bench(memory).acquire(np.zeros((2, 8, 8))))


def test_nan_phases_are_refused_not_cast_to_an_arbitrary_grey():
    slm = _slm()
    phase = np.zeros(slm.shape)
    phase[3, 4] = np.nan
    with pytest.raises(LimitError, match="1 phase values are NaN or Inf; nothing shown"):
        slm.show(phase)
