"""The log view: the GUI's own log and the run processes' output, coloured by level."""

from __future__ import annotations

import html
import logging
import time

from PyQt6.QtCore import QObject, pyqtSignal
from PyQt6.QtGui import QFont
from PyQt6.QtWidgets import QPlainTextEdit, QWidget

COLOURS = {
    "DEBUG": "#8a8f98",
    "INFO": "#d0d4da",
    "WARNING": "#ffb74d",
    "ERROR": "#ff6e6e",
    "CRITICAL": "#ff1744",
    "RUN": "#9ccc65",
}
MAX_LINES = 5000


class _Bridge(QObject):
    record = pyqtSignal(str, str)


class QtLogHandler(logging.Handler):
    """Forwards log records (from any thread) to the log view through a Qt signal."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.bridge = _Bridge()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.bridge.record.emit(record.levelname, self.format(record))
        except RuntimeError:  # the view is gone (interpreter exit)
            pass


class LogView(QPlainTextEdit):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(MAX_LINES)
        font = QFont("DejaVu Sans Mono")
        font.setStyleHint(QFont.StyleHint.Monospace)
        font.setPointSize(9)
        self.setFont(font)
        self.lines: list[str] = []

    def add(self, level: str, text: str) -> None:
        level = level.upper()
        if level == "INFORMATION":
            level = "INFO"
        stamp = time.strftime("%H:%M:%S")
        colour = COLOURS.get(level, COLOURS["INFO"])
        self.appendHtml(
            f"<span style='color:#6b7280'>{stamp}</span> "
            f"<span style='color:{colour}'>{html.escape(text)}</span>"
        )
        self.lines.append(text)
        if len(self.lines) > MAX_LINES:
            del self.lines[: len(self.lines) - MAX_LINES]

    def run_line(self, line: str) -> None:
        """A line from a run process: its level is guessed from labpnn's own prefixes."""
        lowered = line.lower()
        if "error" in lowered or "traceback" in lowered or "failed" in lowered:
            level = "ERROR"
        elif "warning" in lowered or "abort" in lowered:
            level = "WARNING"
        else:
            level = "RUN"
        self.add(level, line)
