"""The SLM view: what the SLM shows (during a run) and test patterns (outside runs)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from labpnn.gui import patterns


class SlmView(QWidget):
    pattern_requested = pyqtSignal(str, float, float, float)  # name, size px, level rad, angle

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.patterns_shown = 0
        self.graphics = pg.GraphicsLayoutWidget()
        self.view = self.graphics.addViewBox(lockAspect=True, invertY=True)
        self.view.setMenuEnabled(False)
        self.image = pg.ImageItem(axisOrder="row-major")
        # grey, as the SLM itself shows it: grey level 0..255 is phase 0..2π
        self.view.addItem(self.image)

        self.kind = QComboBox()
        self.kind.addItems(patterns.PATTERNS)
        self.size = _spin(1, 4096, 16, " px", "Grating period, spot radius or square side")
        self.level = _spin(0, 6.2832, 3.1416, " rad", "Phase of the flat level, spot or squares")
        self.angle = _spin(-180, 180, 0, "°", "Grating direction")
        self.show_button = QPushButton("Show on SLM")
        self.show_button.clicked.connect(self._request)
        self.caption = QLabel("no pattern yet")

        row = QHBoxLayout()
        for w in (self.kind, self.size, self.level, self.angle, self.show_button):
            row.addWidget(w)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.graphics, 1)
        layout.addLayout(row)
        layout.addWidget(self.caption)
        self.set_alignment_enabled(False)

    def _request(self) -> None:
        self.pattern_requested.emit(
            self.kind.currentText(), self.size.value(), self.level.value(), self.angle.value()
        )

    def set_alignment_enabled(self, on: bool, reason: str = "") -> None:
        self.show_button.setEnabled(on)
        self.show_button.setToolTip(
            "Send the test pattern to the SLM"
            if on
            else (reason or "Connect the station (outside runs) to send test patterns")
        )

    def show_pattern(
        self, pattern: np.ndarray, header: dict[str, Any] | None = None, caption: str = ""
    ) -> None:
        pattern = np.asarray(pattern)
        if pattern.ndim != 2:
            return
        if np.issubdtype(pattern.dtype, np.integer):
            top = 255 if pattern.dtype.itemsize == 1 else float(max(1, pattern.max()))
            levels = (0, top)
        else:
            levels = (0, 2 * np.pi)
        self.image.setImage(pattern, autoLevels=False, levels=levels)
        self.patterns_shown += 1
        self.caption.setText(caption or f"{pattern.shape[1]}×{pattern.shape[0]} (from the run)")

    def clear(self) -> None:
        self.image.clear()
        self.caption.setText("no pattern yet")


def _spin(lo: float, hi: float, value: float, suffix: str, tip: str) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setDecimals(2 if hi < 100 else 0)
    box.setValue(value)
    box.setSuffix(suffix)
    box.setToolTip(tip)
    return box
