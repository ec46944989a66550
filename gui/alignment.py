"""The GUI's own connection to a station, for alignment outside runs.

While connected, the GUI holds every instrument's lock (``Station.locked``), exactly
as a run does, so an alignment tool and a run can never drive the same instrument:
a run started elsewhere is recorded as missed ("bench busy"), and the GUI itself
disconnects before it starts a run. On disconnect every instrument is put into its
safe state first.

Slow reads (a camera frame, a VNA sweep) happen in one worker thread so the window
never freezes; every driver call, from the worker or from the window, holds
``io_lock``, so two calls never interleave on one instrument.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import numpy as np
from PyQt6.QtCore import QObject, QTimer, pyqtSignal

from labpnn.errors import LabpnnError
from labpnn.gui import instruments
from labpnn.live import full_scale_of, thumbnail


class AlignmentSession(QObject):
    connected_changed = pyqtSignal(bool)
    frame = pyqtSignal(object, dict)
    trace = pyqtSignal(str, object, dict)
    problem = pyqtSignal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.station: Any = None
        self.config: Any = None
        self.io_lock = threading.RLock()
        self._locks: Any = None
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        self._live_camera = False
        self._live_trace = False
        self._latest_frame: tuple[np.ndarray, dict] | None = None
        self._latest_trace: tuple[str, np.ndarray, dict] | None = None
        self._error = ""
        self._full_scale: float | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(30)
        self._timer.timeout.connect(self._deliver)

    # -- connection ----------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self.station is not None

    def connect_station(self, config: Any) -> None:
        """Lock and connect; raises a LabpnnError with a readable message on failure."""
        from labpnn.station import Station

        if self.connected:
            self.disconnect_station()
        station = Station(config)
        locks = station.locked(timeout_s=0.0)
        locks.__enter__()
        try:
            station.connect()
            station.check_identities()
        except BaseException:
            with contextlib.suppress(Exception):
                station.close()
            locks.__exit__(None, None, None)
            raise
        self.station, self.config, self._locks = station, config, locks
        self._full_scale = None
        self.connected_changed.emit(True)

    def disconnect_station(self) -> dict[str, str]:
        """Safe state, close, release the locks; returns the safe-state outcome."""
        if not self.connected:
            return {}
        self.stop_live()
        outcome = {}
        with self.io_lock:
            with contextlib.suppress(Exception):
                outcome = self.station.safe_state()
            with contextlib.suppress(Exception):
                self.station.close()
        with contextlib.suppress(Exception):
            self._locks.__exit__(None, None, None)
        self.station, self._locks = None, None
        self.connected_changed.emit(False)
        return outcome

    def driver(self, role: str | None) -> Any:
        if not self.connected or role is None:
            return None
        return self.station.instruments.get(role)

    # -- settings ----------------------------------------------------------------------
    def get_setting(self, role: str, name: str) -> Any:
        with self.io_lock:
            return getattr(self.station[role], name)

    def set_setting(self, role: str, name: str, value: Any) -> Any:
        """Check against the station's limits, then set; returns the value read back."""
        driver = self.station[role]
        with self.io_lock:
            if hasattr(driver, "check"):
                value = driver.check(name, value)
            setattr(driver, name, value)
            return getattr(driver, name)

    # -- SLM -----------------------------------------------------------------------------
    def show_pattern(self, phase_for_shape: Any) -> np.ndarray:
        """``phase_for_shape(shape)`` gives the phase image; returns what the SLM shows."""
        slm = self.driver(instruments.slm_role(self.station))
        if slm is None:
            raise LabpnnError("this station has no SLM to send a test pattern to")
        phase = phase_for_shape(instruments.slm_shape(slm))
        with self.io_lock:
            return instruments.show_phase(slm, phase)

    # -- live acquisition ------------------------------------------------------------------
    def start_live(self, camera: bool = False, trace: bool = False) -> None:
        self._live_camera = self._live_camera or camera
        self._live_trace = self._live_trace or trace
        if self._worker is None or not self._worker.is_alive():
            self._stop.clear()
            self._worker = threading.Thread(target=self._work, name="labpnn-align", daemon=True)
            self._worker.start()
        self._timer.start()

    def stop_live(self, camera: bool = True, trace: bool = True) -> None:
        if camera:
            self._live_camera = False
        if trace:
            self._live_trace = False
        if not (self._live_camera or self._live_trace):
            self._stop.set()
            if self._worker is not None:
                self._worker.join(timeout=5)
            self._worker = None
            self._timer.stop()

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                if self._live_camera:
                    self._grab()
                if self._live_trace:
                    self._sweep()
                if not (self._live_camera or self._live_trace):
                    time.sleep(0.05)
            except Exception as exc:  # shown once, and the live view stops
                self._error = f"{type(exc).__name__}: {exc}"
                self._live_camera = self._live_trace = False
                return
            time.sleep(0.005)

    def _grab(self) -> None:
        camera = self.driver(instruments.camera_role(self.station))
        if camera is None:
            raise LabpnnError("this station has no camera")
        with self.io_lock:
            frame = instruments.grab_frame(camera)
            if self._full_scale is None:
                self._full_scale = full_scale_of(camera, frame.dtype)
        top = self._full_scale
        header = {
            "levels": [float(frame.min()), float(frame.max())],
            "full_shape": list(frame.shape),
            "full_scale": top,
            "saturated": int(np.count_nonzero(frame >= top)) if top is not None else 0,
        }
        self._latest_frame = (thumbnail(frame, 512), header)

    def _sweep(self) -> None:
        vna = self.driver(instruments.vna_role(self.station))
        if vna is not None:
            with self.io_lock:
                f, trace, name = instruments.vna_trace(vna)
            self._latest_trace = (name, trace, {"x": f})
            return
        card = self.driver(instruments.audio_role(self.station))
        if card is None:
            raise LabpnnError("this station has neither a VNA nor a sound card")
        with self.io_lock:
            wave, rate = instruments.audio_chunk(card)
        self._latest_trace = ("mic", wave, {"x": np.arange(len(wave)) / rate})

    def _deliver(self) -> None:
        if self._latest_frame is not None:
            frame, header = self._latest_frame
            self._latest_frame = None
            self.frame.emit(frame, header)
        if self._latest_trace is not None:
            name, trace, header = self._latest_trace
            self._latest_trace = None
            self.trace.emit(name, trace, header)
        if self._error:
            self.problem.emit(f"live view stopped: {self._error}")
            self._error = ""
            if not (self._live_camera or self._live_trace):
                self._timer.stop()
