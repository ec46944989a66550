"""The camera view: image with levels and colour map, saturation flagged, ROI and crosshair.

One widget serves both uses experimentalists have for a camera: watching a run (it
is fed thumbnails from the run's loopback channel) and aligning outside runs (it is
fed frames the GUI grabs itself, with an exposure slider). Saturated pixels are
painted red on top, because a saturated speckle silently ruins a TM calibration.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

COLORMAPS = ("viridis", "inferno", "magma", "grey", "CET-L1")
SATURATION_RGBA = (255, 40, 40, 230)


def colormap(name: str) -> pg.ColorMap:
    if name == "grey":
        return pg.ColorMap([0.0, 1.0], [(0, 0, 0), (255, 255, 255)])
    return pg.colormap.get(name)


class FrameRate:
    """Frames per second over the last couple of seconds."""

    def __init__(self, window_s: float = 2.0):
        self.window_s = window_s
        self.times: deque[float] = deque(maxlen=600)

    def tick(self) -> None:
        self.times.append(time.perf_counter())

    @property
    def fps(self) -> float:
        now = time.perf_counter()
        recent = [t for t in self.times if now - t <= self.window_s]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(1e-6, recent[-1] - recent[0])


class CameraView(QWidget):
    live_toggled = pyqtSignal(bool)
    exposure_changed = pyqtSignal(float)  # seconds

    def __init__(self, parent: QWidget | None = None, alignment: bool = True):
        super().__init__(parent)
        self.frames_shown = 0
        self.last_header: dict[str, Any] = {}
        self.rate = FrameRate()
        self._exposure_range = (1e-5, 0.1)
        self._shape: tuple[int, ...] = ()

        self.graphics = pg.GraphicsLayoutWidget()
        self.view = self.graphics.addViewBox(lockAspect=True, invertY=True)
        self.view.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.saturation = pg.ImageItem(axisOrder="row-major")
        self.saturation.setZValue(10)
        self.view.addItem(self.image)
        self.view.addItem(self.saturation)
        self.hist = pg.HistogramLUTItem(image=self.image)
        self.graphics.addItem(self.hist)
        # The histogram, its axis and the info line are redrawn at 4 Hz, not per frame:
        # recomputing and repainting them with every frame cost more than the image.
        self.image.sigImageChanged.disconnect(self.hist.imageChanged)
        self._slow_pending = False
        self._slow_timer = QTimer(self)
        self._slow_timer.setInterval(250)
        self._slow_timer.timeout.connect(self._slow_update)
        self._slow_timer.start()
        self._levels: tuple[float, float] | None = None
        self.vline = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen("#ffd54f", width=1))
        self.hline = pg.InfiniteLine(angle=0, movable=True, pen=pg.mkPen("#ffd54f", width=1))
        for line in (self.vline, self.hline):
            line.setZValue(20)
            line.setVisible(False)
            self.view.addItem(line)
        self.roi = pg.RectROI([8, 8], [32, 32], pen=pg.mkPen("#4fc3f7", width=2))
        self.roi.setZValue(30)
        self.roi.setVisible(False)
        self.view.addItem(self.roi)

        self.colormap_box = QComboBox()
        self.colormap_box.addItems(COLORMAPS)
        self.colormap_box.currentTextChanged.connect(self.set_colormap)
        self.auto_levels = QCheckBox("Auto levels")
        self.auto_levels.setChecked(True)
        self.flag_saturation = QCheckBox("Flag saturated")
        self.flag_saturation.setChecked(True)
        self.crosshair = QCheckBox("Crosshair")
        self.crosshair.toggled.connect(self._toggle_crosshair)
        self.roi_box = QCheckBox("ROI")
        self.roi_box.toggled.connect(self.roi.setVisible)
        self.live_button = QPushButton("Live")
        self.live_button.setCheckable(True)
        self.live_button.setToolTip("Grab frames continuously (alignment, outside runs)")
        self.live_button.toggled.connect(self.live_toggled)
        self.exposure = QSlider(Qt.Orientation.Horizontal)
        self.exposure.setRange(0, 1000)
        self.exposure.setToolTip("Exposure (logarithmic), within the station's limits")
        self.exposure.valueChanged.connect(self._exposure_moved)
        self.exposure_label = QLabel("")
        self.exposure_label.setMinimumWidth(70)
        self.info = QLabel("no frame yet")
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        top = QHBoxLayout()
        for w in (
            self.colormap_box,
            self.auto_levels,
            self.flag_saturation,
            self.crosshair,
            self.roi_box,
        ):
            top.addWidget(w)
        top.addStretch(1)
        align = QHBoxLayout()
        align.addWidget(self.live_button)
        align.addWidget(QLabel("Exposure"))
        align.addWidget(self.exposure, 1)
        align.addWidget(self.exposure_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(top)
        layout.addWidget(self.graphics, 1)
        if alignment:
            layout.addLayout(align)
        else:
            for w in (self.live_button, self.exposure, self.exposure_label):
                w.hide()
        layout.addWidget(self.info)
        self.set_colormap("viridis")
        self.set_alignment_enabled(False)

    # -- display ------------------------------------------------------------------------
    def set_colormap(self, name: str) -> None:
        self.hist.gradient.setColorMap(colormap(name))
        # 256 colour stops would be 256 tick items repainted with every frame
        self.hist.gradient.showTicks(False)

    def show_frame(self, frame: np.ndarray, header: dict[str, Any] | None = None) -> None:
        header = header or {}
        frame = np.asarray(frame)
        if frame.ndim != 2:
            return
        if frame.shape != self._shape:
            self._shape = frame.shape
            self.view.setRange(xRange=(0, frame.shape[1]), yRange=(0, frame.shape[0]), padding=0.02)
            h, w = frame.shape
            self.vline.setValue(w / 2)
            self.hline.setValue(h / 2)
            self.roi.setPos([w / 4, h / 4])
            self.roi.setSize([w / 2, h / 2])
        if self.auto_levels.isChecked():
            self._levels = steady_levels(self._levels, auto_levels(frame))
            self.image.setImage(frame, autoLevels=False, levels=self._levels)
        else:
            self.image.setImage(frame, autoLevels=False)
        self._show_saturation(frame, header)
        self.frames_shown += 1
        self.rate.tick()
        self.last_header = header
        self._last_frame = frame
        if not self._slow_pending:
            self._slow_pending = True
            if self.frames_shown == 1:
                self._slow_update()

    def _slow_update(self) -> None:
        if not self._slow_pending:
            return
        self._slow_pending = False
        self.hist.imageChanged()
        self._update_info(self._last_frame, self.last_header)

    def _show_saturation(self, frame: np.ndarray, header: dict[str, Any]) -> None:
        top = header.get("full_scale")
        if not self.flag_saturation.isChecked() or top is None:
            self.saturation.setVisible(False)
            return
        mask = frame >= top
        if not mask.any():
            self.saturation.setVisible(False)
            return
        rgba = np.zeros((*frame.shape, 4), dtype=np.uint8)
        rgba[mask] = SATURATION_RGBA
        self.saturation.setImage(rgba, autoLevels=False, levels=(0, 255))
        self.saturation.setVisible(True)

    def _update_info(self, frame: np.ndarray, header: dict[str, Any]) -> None:
        full = header.get("full_shape") or list(frame.shape)
        lo, hi = header.get("levels") or (float(frame.min()), float(frame.max()))
        parts = [f"{full[-1]}×{full[-2]} px", f"min {lo:.4g}  max {hi:.4g}"]
        sat = header.get("saturated")
        if sat:
            parts.append(f"<span style='color:#ff5252'><b>{sat} saturated</b></span>")
        if self.roi.isVisible():
            region = self.roi.getArrayRegion(frame, self.image)
            if region is not None and region.size:
                parts.append(f"ROI mean {float(region.mean()):.4g}  max {float(region.max()):.4g}")
        if self.crosshair.isChecked():
            x, y = int(self.vline.value()), int(self.hline.value())
            if 0 <= y < frame.shape[0] and 0 <= x < frame.shape[1]:
                parts.append(f"({x}, {y}) = {frame[y, x]:.4g}")
        if self.rate.fps > 0:  # a stored frame (run browser) has no rate
            parts.append(f"{self.rate.fps:.0f} fps")
        self.info.setText("  ·  ".join(parts))

    def _toggle_crosshair(self, on: bool) -> None:
        self.vline.setVisible(on)
        self.hline.setVisible(on)

    def clear(self) -> None:
        self._levels = None
        self._slow_pending = False  # a pending redraw would bring the old info line back
        self.image.clear()
        self.hist.plot.setData([], [])  # the last frame's histogram goes too (imageChanged
        # returns early without an image)
        self.saturation.setVisible(False)
        self.rate = FrameRate()
        self.info.setText("no frame yet")

    # -- alignment controls -------------------------------------------------------------
    def set_alignment_enabled(self, on: bool, reason: str = "") -> None:
        for w in (self.live_button, self.exposure):
            w.setEnabled(on)
        tip = "" if on else (reason or "Connect the station (outside runs) to align")
        self.live_button.setToolTip(tip or "Grab frames continuously")
        if not on and self.live_button.isChecked():
            self.live_button.setChecked(False)

    def set_exposure_range(self, lo: float, hi: float, value: float | None = None) -> None:
        lo, hi = max(lo, 1e-9), max(hi, lo * 1.0001)
        self._exposure_range = (lo, hi)
        if value is not None:
            self.exposure.blockSignals(True)
            self.exposure.setValue(self._to_slider(value))
            self.exposure.blockSignals(False)
            self.exposure_label.setText(_seconds(value))

    def _to_slider(self, value: float) -> int:
        lo, hi = self._exposure_range
        value = min(max(value, lo), hi)
        return round(1000 * math.log(value / lo) / math.log(hi / lo))

    def exposure_s(self) -> float:
        lo, hi = self._exposure_range
        return lo * (hi / lo) ** (self.exposure.value() / 1000)

    def _exposure_moved(self, _: int) -> None:
        value = self.exposure_s()
        self.exposure_label.setText(_seconds(value))
        self.exposure_changed.emit(value)


def auto_levels(frame: np.ndarray) -> tuple[float, float]:
    """Black at the minimum, white at the 99.9th percentile (of a subsample, for speed).

    Speckle has a long exponential tail, and a few saturated or hot pixels would
    otherwise make the whole image black; saturation is flagged in red instead.
    """
    sample = frame[::2, ::2].ravel() if frame.size > 16384 else frame.ravel()
    lo = float(sample.min())
    k = min(len(sample) - 1, int(0.999 * len(sample)))
    hi = float(np.partition(sample, k)[k])
    if hi <= lo:
        hi = max(float(frame.max()), lo + 1)
    return lo, hi


def steady_levels(
    current: tuple[float, float] | None, new: tuple[float, float]
) -> tuple[float, float]:
    """Keep the levels unless they moved by more than 5 % of the span (no flicker)."""
    if current is None:
        return new
    span = max(new[1] - new[0], 1e-12)
    if abs(new[0] - current[0]) > 0.05 * span or abs(new[1] - current[1]) > 0.05 * span:
        return new
    return current


def _seconds(value: float) -> str:
    if value >= 1:
        return f"{value:.3g} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} µs"
