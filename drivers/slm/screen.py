"""ScreenSLM: a phase-only SLM driven as a second monitor (HDMI/DisplayPort).

Most LCoS SLMs (Holoeye, Meadowlark HDMI models, Santec, Hamamatsu X10468) are a screen:
a grey level per pixel is a phase. The driver maps phase -> grey, puts the image on a
frameless full-screen window (see :mod:`.qt_display`) and tells, through the clock,
*when* the LC will show it, following openwfs' actuator model:

* ``show()`` returns at once with the presentation time: the first vsync after now
  (vsyncs at ``k / refresh_hz`` on the clock) plus ``latency_s``;
* ``ready_at`` = presentation time + ``settle_time_s``: a detector triggered at or after it
  sees the settled pattern, so the next frame can be sent as soon as the previous
  exposure ended and the camera read-out overlaps the LC settling.

The phase -> grey map is a linear wrap of 0..2π onto 0..255, or the inverse of a measured
``phase_lut`` (256 phases, one per grey level). The panel's true response is physics: a
simulated world models it, a real bench calibrates it.

Display back-ends: ``qt`` (the real screen), ``offscreen`` (the same Qt window and
painting under ``QT_QPA_PLATFORM=offscreen``, read back with ``QWidget.grab()``) and
``memory`` (no Qt; for light tests and long simulated studies). Each presented frame is
passed with its presentation time to the hooks registered with :meth:`add_present_hook`,
which is how a simulated world sees the SLM without the driver knowing it exists.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from labpnn.clock import WALL_CLOCK
from labpnn.errors import ConfigError, LimitError, MissingDependency
from labpnn.settings import InstrumentSettings, Setting, refuse_unknown_options

PresentHook = Callable[[np.ndarray, float], None]


class MemoryDisplay:
    """Keeps the frame in memory; what was 'displayed' is exactly the array given."""

    name = "memory"

    def __init__(self, shape: tuple[int, int]):
        self.shape = shape

    def present(self, grey: np.ndarray) -> np.ndarray:
        return grey

    def describe(self) -> str:
        return "memory display"

    def close(self) -> None:
        pass


class ScreenSLM(InstrumentSettings):
    SETTINGS = (
        Setting("refresh_hz", "Hz", "video frame rate of the SLM's input", range=(1.0, 1000.0)),
        Setting("settle_time_s", "s", "LC settling time after presentation", range=(0.0, 10.0)),
        Setting("latency_s", "s", "vsync to the LC starting to switch", range=(0.0, 1.0)),
        Setting("resolution", "px", "(width, height)", kind=tuple, settable=False),
        Setting("screen", "", "the screen the SLM is attached to", kind=str, settable=False),
    )

    def __init__(
        self,
        label: str = "slm",
        limits: dict | None = None,
        *,
        screen: str | int = 0,
        resolution: Sequence[int] | None = None,
        display: str = "qt",
        refresh_hz: float = 60.0,
        settle_time_s: float = 0.01,
        latency_s: float = 0.0,
        phase_lut: Sequence[float] | None = None,
        present_timeout_s: float = 2.0,
        clock: Any = None,
        **unknown: Any,
    ):
        self._init_settings(label, limits)
        refuse_unknown_options(label, type(self), unknown)
        self.clock = clock or WALL_CLOCK
        self._screen = str(screen)
        self._hooks: list[PresentHook] = []
        self._inverse_lut = None if phase_lut is None else _inverse_lut(phase_lut, label)
        self.refresh_hz = refresh_hz
        self.settle_time_s = settle_time_s
        self.latency_s = latency_s
        if display == "memory":
            if resolution is None:
                raise ConfigError(f"{label}: display 'memory' needs a resolution [width, height]")
            self._display: Any = MemoryDisplay((int(resolution[1]), int(resolution[0])))
        elif display in ("qt", "offscreen"):
            from labpnn.drivers.slm.qt_display import QtDisplay

            self._display = QtDisplay(
                screen, resolution, offscreen=display == "offscreen", label=label,
                timeout_s=present_timeout_s,
            )  # fmt: skip
        else:
            raise ConfigError(f"{label}: display '{display}' is not one of qt, offscreen, memory")
        self.shape: tuple[int, int] = tuple(self._display.shape)  # (rows, cols)
        self._last = np.zeros(self.shape, dtype=np.uint8)
        self._t_present = -math.inf
        self._ready_at = -math.inf

    # -- settings -------------------------------------------------------------------------
    @property
    def refresh_hz(self) -> float:
        return self._refresh_hz

    @refresh_hz.setter
    def refresh_hz(self, value: float) -> None:
        self._refresh_hz = self.check("refresh_hz", value)

    @property
    def settle_time_s(self) -> float:
        return self._settle_time_s

    @settle_time_s.setter
    def settle_time_s(self, value: float) -> None:
        self._settle_time_s = self.check("settle_time_s", value)

    @property
    def latency_s(self) -> float:
        return self._latency_s

    @latency_s.setter
    def latency_s(self, value: float) -> None:
        self._latency_s = self.check("latency_s", value)

    @property
    def resolution(self) -> tuple[int, int]:
        """(width, height) in pixels, as screens are specified."""
        return self.shape[1], self.shape[0]

    @property
    def screen(self) -> str:
        return self._screen

    # -- timing ---------------------------------------------------------------------------
    def next_presentation(self, t: float | None = None) -> float:
        """When a frame sent at ``t`` (default now) starts to appear on the panel."""
        t = self.clock.now() if t is None else t
        return (math.floor(t * self._refresh_hz) + 1) / self._refresh_hz + self._latency_s

    @property
    def presented_at(self) -> float:
        return self._t_present

    @property
    def ready_at(self) -> float:
        """When the last frame shown is settled (presentation time + settle time)."""
        return self._ready_at

    @property
    def last_frame(self) -> np.ndarray:
        """The grey image last presented (as read back, for the offscreen display)."""
        return self._last

    # -- showing --------------------------------------------------------------------------
    def phase_to_grey(self, phase_rad: np.ndarray) -> np.ndarray:
        """uint8 grey levels for phases in rad, wrapped to 0..2π."""
        phase = np.asarray(phase_rad, dtype=np.float64)
        if not np.isfinite(phase).all():
            # NaN casts to an arbitrary grey level: refuse rather than show garbage
            bad = int(np.count_nonzero(~np.isfinite(phase)))
            raise LimitError(f"{self.label}: {bad} phase values are NaN or Inf; nothing shown")
        if self._inverse_lut is not None:
            index = np.floor(np.mod(phase, 2 * np.pi) * (len(self._inverse_lut) / (2 * np.pi)))
            return self._inverse_lut[index.astype(np.int64) % len(self._inverse_lut)]
        grey = np.floor(np.mod(phase, 2 * np.pi) * (256 / (2 * np.pi)) + 0.5)
        return (grey.astype(np.int64) % 256).astype(np.uint8)

    def show(self, phase_rad: np.ndarray) -> float:
        """Display a phase image; returns the presentation time (see :meth:`show_grey`)."""
        return self.show_grey(self.phase_to_grey(phase_rad))

    def show_grey(self, grey: np.ndarray) -> float:
        """Display grey levels; returns at once with the presentation time.

        ``grey`` is uint8 at the SLM resolution [rows, cols], or a coarser grid whose
        shape divides it (each element then fills a block of pixels).
        """
        grey = np.asarray(grey)
        if grey.dtype != np.uint8:
            raise LimitError(f"{self.label}: grey levels must be uint8, got {grey.dtype}")
        grey = self._expand(grey)
        shown = self._display.present(grey)
        t = self.next_presentation()
        self._last, self._t_present, self._ready_at = shown, t, t + self._settle_time_s
        for hook in list(self._hooks):
            hook(shown, t)
        return t

    def _expand(self, grey: np.ndarray) -> np.ndarray:
        rows, cols = self.shape
        if grey.shape == (rows, cols):
            return grey
        if grey.ndim == 2 and rows % grey.shape[0] == 0 and cols % grey.shape[1] == 0:
            return np.repeat(np.repeat(grey, rows // grey.shape[0], 0), cols // grey.shape[1], 1)
        raise LimitError(
            f"{self.label}: a {grey.shape} image does not fit the {rows}x{cols} (rows x cols) "
            "SLM: give the full resolution or a grid whose shape divides it"
        )

    def blank(self) -> float:
        """Show grey 0 (flat zero phase) everywhere."""
        return self.show_grey(np.zeros((1, 1), dtype=np.uint8))

    def add_present_hook(self, hook: PresentHook) -> None:
        """Call ``hook(grey_image, t_present)`` for every presented frame."""
        self._hooks.append(hook)

    def remove_present_hook(self, hook: PresentHook) -> None:
        with contextlib.suppress(ValueError):
            self._hooks.remove(hook)

    # -- instrument contract --------------------------------------------------------------
    def safe_state(self) -> None:
        self.blank()

    def identity(self) -> dict[str, str]:
        return {
            "vendor": "generic",
            "model": f"screen SLM {self.shape[1]}x{self.shape[0]}",
            "serial": self._screen,
            "firmware": self._display.describe(),
        }

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.blank()
        self._display.close()
        self._hooks.clear()

    @classmethod
    def check_available(cls, options: dict[str, Any]) -> None:
        """For ``labpnn station check``: Qt is installed and the screen exists."""
        if options.get("display", "qt") != "qt":
            return
        try:
            from labpnn.drivers.slm.qt_display import find_screen
        except ImportError as exc:  # pragma: no cover - PyQt6 is a core dependency
            raise MissingDependency(f"ScreenSLM needs PyQt6: pip install PyQt6 ({exc})") from None
        find_screen(options.get("screen", 0), create_app=True)


def _inverse_lut(phase_lut: Sequence[float], label: str) -> np.ndarray:
    """A 4096-bin table: wrapped phase -> the grey level whose phase is nearest."""
    lut = np.mod(np.asarray(phase_lut, dtype=np.float64), 2 * np.pi)
    if lut.shape != (256,):
        raise ConfigError(f"{label}: phase_lut must list 256 phases (rad), got {lut.shape}")
    bins = (np.arange(4096) + 0.5) * (2 * np.pi / 4096)
    distance = np.abs(np.angle(np.exp(1j * (bins[:, None] - lut[None, :]))))
    return np.argmin(distance, axis=1).astype(np.uint8)
