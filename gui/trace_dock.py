"""Spectra and waveforms: |S21| from a VNA, audio waveform and level meter.

A complex trace is shown as magnitude in dB (what one tunes a cavity by); a real
trace as a waveform, with its RMS level in dBFS on a meter (what one sets a speaker
gain by, well below clipping).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWidget

METER_FLOOR_DB = -80.0


def db20(x: np.ndarray) -> np.ndarray:
    return 20 * np.log10(np.maximum(np.abs(x), 1e-12))


def rms_dbfs(wave: np.ndarray) -> float:
    raw = np.asarray(wave)
    wave = raw.astype(float)
    if np.issubdtype(raw.dtype, np.integer):
        wave = wave / np.iinfo(raw.dtype).max
    rms = float(np.sqrt(np.mean(wave**2))) if wave.size else 0.0
    return 20 * np.log10(max(rms, 1e-12))


class TraceView(QWidget):
    live_toggled = pyqtSignal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.traces_shown = 0
        self.plot = pg.PlotWidget()
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.curve = self.plot.plot(pen=pg.mkPen("#4fc3f7", width=1.5))
        self.meter = QProgressBar()
        self.meter.setRange(int(METER_FLOOR_DB), 0)
        self.meter.setFormat("%v dBFS")
        self.meter.setTextVisible(True)
        self.meter.setVisible(False)
        self.live_button = QPushButton("Live")
        self.live_button.setCheckable(True)
        self.live_button.toggled.connect(self.live_toggled)
        self.caption = QLabel("no trace yet")
        row = QHBoxLayout()
        row.addWidget(self.live_button)
        row.addWidget(self.meter, 1)
        row.addWidget(self.caption)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.plot, 1)
        layout.addLayout(row)
        self.set_alignment_enabled(False)

    def set_alignment_enabled(self, on: bool, reason: str = "") -> None:
        self.live_button.setEnabled(on)
        self.live_button.setToolTip(
            "Sweep or record continuously"
            if on
            else (reason or "Connect a station with a VNA or microphone")
        )
        if not on and self.live_button.isChecked():
            self.live_button.setChecked(False)

    def show_trace(
        self,
        name: str,
        trace: np.ndarray,
        header: dict[str, Any] | None = None,
        x: np.ndarray | None = None,
    ) -> None:
        trace = np.asarray(trace).reshape(-1)
        if np.iscomplexobj(trace):
            y = db20(trace)
            self.plot.setLabel("left", f"|{name}|", units="dB")
            self.plot.setLabel(
                "bottom",
                "frequency" if x is not None else "point",
                units="Hz" if x is not None else "",
            )
            self.meter.setVisible(False)
        else:
            y = trace.astype(float)
            self.plot.setLabel("left", name)
            self.plot.setLabel(
                "bottom", "time" if x is not None else "sample", units="s" if x is not None else ""
            )
            level = rms_dbfs(trace)
            self.meter.setVisible(True)
            self.meter.setValue(int(max(METER_FLOOR_DB, min(0.0, level))))
        self.curve.setData(np.arange(len(y)) if x is None else x, y)
        self.traces_shown += 1
        self.caption.setText(f"{name}: {len(y)} points")

    def clear(self) -> None:
        self.curve.setData([], [])
        self.meter.setVisible(False)
        self.caption.setText("no trace yet")
