"""A simulated world that outlives its run: ``bench.simulation.persist: true``.

A real fibre does not return to the state it had at the first run every time labpnn starts,
but a simulated world does: it starts from its seed at t = 0. For overnight rehearsals, where
the calibration registry should see the medium drift from night to night, the station can keep
the world's state (the same ``state_dict`` that training checkpoints hold) in
``STATE/worlds/<station>-<layout hash>-<simulation hash>.npz`` when it closes, and restore it at the next connect.
The wall-clock time that passed in between is then let pass in the world with the bench idle
(``world.elapse``), so the medium has drifted by as much as the station's drift rate says.
A world with other settings (seed, medium, drift rate...) has another file.

It is off by default: with it on, two runs with the same seed no longer start from the same
medium, which is what reproducible tests and studies need.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

_SAVED_AT = "__saved_at_wall_s"


class WorldStore:
    """Save and restore one simulated world's state in an ``.npz`` file (no pickle)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.restored_after_s: float | None = None

    def restore(self, world: Any, now: float | None = None) -> str:
        """Load the saved state into ``world`` and let the idle time since it was saved pass.

        Returns a one-line account for the log. A missing file starts the world afresh; a file
        that cannot be read into this world is renamed ``*.unusable-<time>.npz``, not used.
        """
        if not self.path.is_file():
            return f"simulated world starts afresh (no saved state at {self.path})"
        try:
            with np.load(self.path, allow_pickle=False) as saved:
                state = {key: saved[key] for key in saved.files}
            saved_at = float(state.pop(_SAVED_AT))
            world.load_state_dict({key: _scalar(value) for key, value in state.items()})
        except Exception as exc:  # unreadable or not this world's: keep it for inspection
            stamp = time.strftime("%Y%m%d-%H%M%S")
            aside = self.path.with_name(f"{self.path.stem}.unusable-{stamp}.npz")
            os.replace(self.path, aside)
            log.warning(
                "the saved simulated world in %s does not fit this station (%s: %s); "
                "starting afresh and keeping the old state as %s",
                self.path, type(exc).__name__, exc, aside,
            )  # fmt: skip
            return f"simulated world starts afresh (saved state did not fit: {exc})"
        # wall-clock time: a clock set back gives no drift, one set forward (NTP, a restored VM)
        # drifts the world by the jump
        idle = max(0.0, (time.time() if now is None else now) - saved_at)
        if not math.isfinite(idle):
            idle = 0.0
        elapse = getattr(world, "elapse", None)
        if elapse is None:  # a lab's own world without idle drift: it continues as it was
            idle = 0.0
        else:
            elapse(idle)
        self.restored_after_s = idle
        return f"simulated world restored from {self.path} after {idle / 3600:.2f} h idle"

    def save(self, world: Any, now: float | None = None) -> None:
        """Write the world's state atomically (a crash mid-write keeps the previous state)."""
        state = {key: np.asarray(value) for key, value in world.state_dict().items()}
        state[_SAVED_AT] = np.asarray(time.time() if now is None else now)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        with open(partial, "wb") as handle:
            np.savez(handle, **state)
        os.replace(partial, self.path)


def _scalar(value: np.ndarray) -> Any:
    """0-d arrays back to Python values (the worlds' ``load_state_dict`` take either)."""
    if value.ndim:
        return value
    item = value.item()
    return str(item) if isinstance(item, str) else item
