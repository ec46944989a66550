"""Listeners of what an instrument measures, for live views that must see every run.

A procedure records what it keeps; a training run keeps no frames, sweeps or recordings, yet
the operator watching the GUI wants to see the camera, the spectrum or the microphone. So
drivers hand each measurement to their :class:`DataHooks` as it arrives, tagged with its
kind (``frame``: a camera image; ``spectrum``: ``(f_hz, {param: complex[points]})`` of a VNA
sweep; ``waveform``: a recorded audio channel), and :mod:`labpnn.live` listens.

Listeners run synchronously in the driver's thread, inside the measurement loop: they must
be quick and must not modify the payload (it is the array the caller gets back). Drivers
hand over arrays they do not reuse, so a listener may keep one and process it later in
another thread, as :mod:`labpnn.live` does. Listeners' errors are logged once and otherwise
ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

Hook = Callable[[str, Any], None]


class DataHooks:
    """The listeners of one driver. A listener's error never reaches the measurement."""

    def __init__(self) -> None:
        # replaced, never mutated: a measurement thread iterating it never sees it change
        self._hooks: tuple[Hook, ...] = ()
        self._failed: set[int] = set()

    def add(self, hook: Hook) -> None:
        self._hooks = (*self._hooks, hook)

    def remove(self, hook: Hook) -> None:
        self._hooks = tuple(h for h in self._hooks if h != hook)

    def __bool__(self) -> bool:
        """Whether anybody listens (a driver may skip preparing a payload otherwise)."""
        return bool(self._hooks)

    def __call__(self, kind: str, payload: Any) -> None:
        for hook in self._hooks:
            try:
                hook(kind, payload)
            except Exception as exc:  # a viewer must never break a measurement
                if id(hook) not in self._failed:
                    self._failed.add(id(hook))
                    logging.getLogger("labpnn.data_hooks").warning(
                        "a live-view listener failed on a %s (the measurement goes on; its later "
                        "failures are not logged): %s: %s",
                        kind, type(exc).__name__, exc,
                    )  # fmt: skip
