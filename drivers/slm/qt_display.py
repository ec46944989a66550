"""The SLM's frameless full-screen Qt window, and how frames reach it from any thread.

**Pixel fidelity.** A phase pattern must reach the panel 1:1: no scaling, smoothing or
colour conversion. Before the QApplication exists we switch off Qt's high-DPI scaling
(``QT_ENABLE_HIGHDPI_SCALING=0``, rounding policy ``PassThrough``); if an application
already exists (the GUI), the image is tagged with the window's device-pixel ratio so
that one image pixel is still one device pixel. The image is 8-bit greyscale without a
colour space, so Qt does no colour management, and it is drawn unscaled at (0, 0).

**Threads.** QWidgets live in the Qt main thread. We chose to marshal frames to it with a
queued signal rather than to run the window in a separate display process: the run is
already its own process, so its main thread can run the Qt loop while the procedure runs
in a worker thread; a second process would need shared memory, its own crash and abort
handling, and would make ``safe_state()`` depend on inter-process messaging. ``present``
paints directly when called from the Qt thread (the common headless case: procedure and
SLM both in the main thread, no event loop needed) and otherwise posts the frame and
waits (with a timeout) until the Qt thread has painted it, so the presentation time the
driver reports is never earlier than the paint.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from labpnn.errors import ConfigError, InstrumentError, InstrumentTimeout, MissingDependency


def _qt():
    try:
        from PyQt6 import QtCore, QtGui, QtWidgets
    except ImportError as exc:
        raise MissingDependency(
            f"the Qt SLM display needs PyQt6 and its system libraries: pip install PyQt6 "
            f"(on a bare Linux: apt install libegl1 libgl1 libxkbcommon0 libfontconfig1) ({exc})"
        ) from None
    return QtCore, QtGui, QtWidgets


def ensure_app(offscreen: bool = False):
    """The process's QApplication, created with pixel-exact settings if there is none."""
    QtCore, QtGui, QtWidgets = _qt()
    app = QtWidgets.QApplication.instance()
    if app is None:
        if offscreen:
            os.environ["QT_QPA_PLATFORM"] = "offscreen"
        elif (
            sys.platform.startswith("linux")
            and not os.environ.get("QT_QPA_PLATFORM")
            and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        ):  # Qt would abort the whole process here
            raise ConfigError(
                "no graphical display (DISPLAY and WAYLAND_DISPLAY are unset): the SLM "
                "screen needs the desktop session it is attached to"
            )
        os.environ["QT_ENABLE_HIGHDPI_SCALING"] = "0"
        QtGui.QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
            QtCore.Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
        )
        app = QtWidgets.QApplication(sys.argv[:1] or ["labpnn"])
    return app


def find_screen(screen: str | int, create_app: bool = False):
    """The QScreen named ``screen`` (or with that index); ConfigError listing the others."""
    _QtCore, QtGui, _QtWidgets = _qt()
    if create_app:
        ensure_app()
    screens = QtGui.QGuiApplication.screens()
    for i, s in enumerate(screens):
        if str(screen) in (s.name(), str(i)):
            return s
    names = ", ".join(f"{i}: {s.name()}" for i, s in enumerate(screens)) or "none"
    raise ConfigError(f"no screen '{screen}' for the SLM (screens: {names})")


def _to_qimage(grey: np.ndarray, dpr: float):
    _QtCore, QtGui, _QtWidgets = _qt()
    rows, cols = grey.shape
    data = np.ascontiguousarray(grey)
    image = QtGui.QImage(data.data, cols, rows, cols, QtGui.QImage.Format.Format_Grayscale8).copy()
    image.setDevicePixelRatio(dpr)
    return image


def _from_qimage(image) -> np.ndarray:
    _QtCore, QtGui, _QtWidgets = _qt()
    image = image.convertToFormat(QtGui.QImage.Format.Format_Grayscale8)
    ptr = image.constBits()
    ptr.setsize(image.sizeInBytes())
    rows = image.height()
    raw = np.frombuffer(ptr, dtype=np.uint8).reshape(rows, image.bytesPerLine())
    return raw[:, : image.width()].copy()


class QtDisplay:
    """A frameless window showing 8-bit grey images 1:1 on one screen."""

    def __init__(
        self,
        screen: str | int,
        resolution: Sequence[int] | None,
        *,
        offscreen: bool,
        label: str = "slm",
        timeout_s: float = 2.0,
    ):
        QtCore, _QtGui, QtWidgets = _qt()
        self.label, self.timeout_s, self.offscreen = label, float(timeout_s), offscreen
        if threading.current_thread() is not threading.main_thread():
            raise InstrumentError(
                f"{label}: create the Qt SLM display in the main thread (Qt's rule); run the "
                "procedure in a worker thread, or use display: memory"
            )
        self._app = ensure_app(offscreen)
        self._thread_id = threading.get_ident()
        platform = self._app.platformName()
        try:
            qscreen = find_screen(screen)
        except ConfigError:
            if not (offscreen or platform == "offscreen"):
                raise
            qscreen = QtWidgets.QApplication.primaryScreen()
        if resolution is None:
            size = qscreen.geometry().size() * qscreen.devicePixelRatio()
            resolution = (size.width(), size.height())
        cols, rows = int(resolution[0]), int(resolution[1])
        self.shape = (rows, cols)
        # An offscreen display inside an app on a real screen stays hidden: grab() renders it.
        self._visible = not offscreen or platform == "offscreen"
        self._window = _window_class()(rows, cols)
        if self._visible and not offscreen and platform != "offscreen":
            geometry = qscreen.geometry()
            dpr = qscreen.devicePixelRatio()
            if (round(geometry.width() * dpr), round(geometry.height() * dpr)) != (cols, rows):
                raise ConfigError(
                    f"{label}: screen '{qscreen.name()}' is {geometry.width() * dpr:g}x"
                    f"{geometry.height() * dpr:g} device px but resolution says {cols}x{rows}"
                )
            self._window.setScreen(qscreen)
            self._window.setGeometry(geometry)
            self._window.showFullScreen()
        else:
            self._window.setFixedSize(cols, rows)
            if self._visible:
                self._window.show()
        self._bridge = _bridge_class()()
        self._screen_name = qscreen.name()
        self._app.processEvents()

    def describe(self) -> str:
        from PyQt6.QtCore import QT_VERSION_STR

        kind = "offscreen" if self.offscreen else "screen"
        return f"Qt {QT_VERSION_STR} {kind} window on {self._screen_name}"

    def _in_qt_thread(self) -> bool:
        return threading.get_ident() == self._thread_id

    def _call(self, fn, *args: Any) -> Any:
        if self._in_qt_thread():
            return fn(*args)
        job = _Job(fn, args)
        self._bridge.request.emit(job)
        if not job.done.wait(self.timeout_s):
            raise InstrumentTimeout(
                f"{self.label}: the Qt main thread did not paint the SLM frame within "
                f"{self.timeout_s:g} s: is its event loop running?"
            )
        if job.error is not None:
            raise job.error
        return job.result

    def _paint(self, grey: np.ndarray) -> np.ndarray:
        self._window.set_image(_to_qimage(grey, self._window.devicePixelRatioF()))
        if self.offscreen:
            return _from_qimage(self._window.grab().toImage())
        self._window.repaint()  # synchronous: painted before show() returns
        return grey

    def present(self, grey: np.ndarray) -> np.ndarray:
        """Paint ``grey``; returns what was painted (read back when offscreen)."""
        return self._call(self._paint, grey)

    def close(self) -> None:
        if self._window is not None:
            try:
                self._call(self._window.close)
            finally:
                self._window = None


class _Job:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.fn(*self.args)
        except BaseException as exc:  # handed back to the calling thread
            self.error = exc
        finally:
            self.done.set()


_CLASSES: dict[str, type] = {}


def _window_class() -> type:
    """Defined lazily so that importing this module does not import PyQt6."""
    if "window" not in _CLASSES:
        QtCore, QtGui, QtWidgets = _qt()

        class SLMWindow(QtWidgets.QWidget):
            def __init__(self, rows: int, cols: int):
                flags = (
                    QtCore.Qt.WindowType.FramelessWindowHint
                    | QtCore.Qt.WindowType.WindowStaysOnTopHint
                )
                super().__init__(None, flags)
                self.setWindowTitle("labpnn SLM")
                self.setCursor(QtCore.Qt.CursorShape.BlankCursor)
                self.setAttribute(QtCore.Qt.WidgetAttribute.WA_OpaquePaintEvent)
                self._image = QtGui.QImage(cols, rows, QtGui.QImage.Format.Format_Grayscale8)
                self._image.fill(0)

            def set_image(self, image) -> None:
                self._image = image

            def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
                painter = QtGui.QPainter(self)
                painter.drawImage(0, 0, self._image)
                painter.end()

        _CLASSES["window"] = SLMWindow
    return _CLASSES["window"]


def _bridge_class() -> type:
    if "bridge" not in _CLASSES:
        QtCore, _QtGui, _QtWidgets = _qt()

        class Bridge(QtCore.QObject):
            request = QtCore.pyqtSignal(object)

            def __init__(self):
                super().__init__()
                self.request.connect(self._run, QtCore.Qt.ConnectionType.QueuedConnection)

            def _run(self, job: _Job) -> None:
                job.run()

        _CLASSES["bridge"] = Bridge
    return _CLASSES["bridge"]
