"""The GUI end of the loopback channel, drained on a Qt timer.

Why a timer and not a socket notifier: ZeroMQ's notification descriptor is
edge-triggered, easy to get subtly wrong; a 15 ms timer that drains everything costs
nothing measurable and bounds the display latency. Only the newest frame of each
stream is handed on, so a slow repaint never builds a backlog.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PyQt6.QtCore import QObject, QTimer, pyqtSignal

from labpnn.live import LiveServer, Message


class LiveFeed(QObject):
    hello = pyqtSignal(dict)
    frame = pyqtSignal(str, object, dict)  # name, thumbnail, header
    row = pyqtSignal(str, dict)  # group, values
    trace = pyqtSignal(str, object, dict)
    slm = pyqtSignal(object, dict)
    operator = pyqtSignal(object)  # labpnn.live.Message

    def __init__(self, parent: QObject | None = None, interval_ms: int = 15):
        super().__init__(parent)
        self.server = LiveServer()
        self.address = self.server.address
        self.received = 0
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.drain)
        self._timer.start()

    def drain(self) -> None:
        for msg in self.server.drain():
            self.received += 1
            self._dispatch(msg)

    def _dispatch(self, msg: Message) -> None:
        h: dict[str, Any] = msg.header
        name = str(h.get("name", ""))
        if msg.type == "frame" and isinstance(msg.array, np.ndarray):
            self.frame.emit(name, msg.array, h)
        elif msg.type == "row":
            self.row.emit(name, dict(h.get("values") or {}))
        elif msg.type == "trace" and isinstance(msg.array, np.ndarray):
            self.trace.emit(name, msg.array, h)
        elif msg.type == "slm" and isinstance(msg.array, np.ndarray):
            self.slm.emit(msg.array, h)
        elif msg.type == "hello":
            self.hello.emit(h)
        elif msg.type == "operator":
            self.operator.emit(msg)

    def reply(self, request: Message, answer: dict[str, Any]) -> None:
        self.server.reply(request, answer)

    def close(self) -> None:
        self._timer.stop()
        self.server.close()
