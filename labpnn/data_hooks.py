"""Listeners of what an instrument measures, for live views that must see every run.

A procedure records what it keeps; a training run keeps no frames, sweeps or recordings, yet
the operator watching the GUI wants to see the camera, the spectrum or the microphone. So
drivers hand each measurement to their :class:`DataHooks` as it arrives, tagged with its
kind (``frame``: a camera image; ``spectrum``: ``(f_hz, {param: complex[points]})`` of a VNA
sweep; ``waveform``: a recorded audio channel), and :mod:`labpnn.live` listens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

Hook = Callable[[str, Any], None]


class DataHooks:
    """The listeners of one driver. A listener's error never reaches the measurement."""

    def __init__(self) -> None:
        self._hooks: list[Hook] = []

    def add(self, hook: Hook) -> None:
        self._hooks.append(hook)

    def remove(self, hook: Hook) -> None:
        with contextlib.suppress(ValueError):
            self._hooks.remove(hook)

    def __call__(self, kind: str, payload: Any) -> None:
        for hook in self._hooks:
            with contextlib.suppress(Exception):  # a viewer must never break a measurement
                hook(kind, payload)
