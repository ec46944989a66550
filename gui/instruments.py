"""What the alignment tools need from a driver, asked by capability rather than by class.

The GUI must work with every camera, SLM, VNA and sound card a station names, so it
looks for the methods the driver families share (``Camera.grab``, ``ScreenSLM.show``,
``ScpiVna.sweep_arrays``, ``SoundCard.playrec``) instead of importing driver classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def find_role(station: Any, *, role: str, method: str) -> str | None:
    """``role`` if the station has it, else the first instrument offering ``method``."""
    instruments = getattr(station, "instruments", {}) or {}
    if role in instruments:
        return role
    for name, driver in instruments.items():
        if callable(getattr(driver, method, None)):
            return name
    return None


def camera_role(station: Any) -> str | None:
    return find_role(station, role="camera", method="grab")


def slm_role(station: Any) -> str | None:
    return find_role(station, role="slm", method="show")


def vna_role(station: Any) -> str | None:
    return find_role(station, role="vna", method="sweep_arrays")


def audio_role(station: Any) -> str | None:
    for role in ("soundcard", "audio", "sound"):
        if role in (getattr(station, "instruments", {}) or {}):
            return role
    return find_role(station, role="soundcard", method="playrec")


def grab_frame(camera: Any) -> np.ndarray:
    """One frame; ``Camera.grab`` returns ``(frame, t)``, simpler drivers the frame."""
    result = camera.grab()
    if isinstance(result, tuple):
        result = result[0]
    return np.asarray(result)


def slm_shape(slm: Any) -> tuple[int, int]:
    """(height, width) of the SLM in pixels."""
    for attr in ("resolution", "shape"):
        value = getattr(slm, attr, None)
        if isinstance(value, (tuple, list)) and len(value) == 2:
            if attr == "resolution":  # screens give (width, height)
                return int(value[1]), int(value[0])
            return int(value[0]), int(value[1])
    return 256, 256


def show_phase(slm: Any, phase: np.ndarray) -> np.ndarray:
    """Show a phase image (radians); returns the grey image the SLM displays."""
    slm.show(phase)
    last = getattr(slm, "last_frame", None)
    return np.asarray(last) if last is not None else phase


def vna_trace(vna: Any) -> tuple[np.ndarray, np.ndarray, str]:
    """(frequencies in Hz, complex trace, its name) of one sweep."""
    traces = tuple(getattr(vna, "traces", ()) or ())
    if not traces and hasattr(vna, "define_traces"):
        vna.define_traces(["S21"])
        traces = ("S21",)
    data = vna.sweep_arrays()
    name = "S21" if "S21" in data else next(iter(data))
    return np.asarray(vna.frequencies_hz()), np.asarray(data[name]), name


def audio_chunk(card: Any, duration_s: float = 0.1) -> tuple[np.ndarray, float]:
    """(microphone samples, samplerate) while the speaker plays silence."""
    rate = float(getattr(card, "samplerate", 48000) or 48000)
    response, _ = card.playrec(np.zeros(max(16, int(rate * duration_s))))
    return np.asarray(response), rate
