"""The SLM's liquid-crystal response: a frame grabbed too early sees old and new fields mixed.

When frame ``k`` is presented at ``t_k``, each cell's field relaxes from what it was then
(``old``) to the new pattern (``new``) as a first-order lag::

    E(t) = old · w + new · (1 - w),   w = exp(-(t - t_k) / τ),   τ = settle_s / ln(1000)

so after ``settle_s`` (the panel's rated settling time) the residual is 0.1 % and is then
dropped: a bench that waits the settling time sees exactly the settled field, which is
what lets the batched ``direct`` path skip this model (1 ns of slack absorbs rounding). ``old`` is itself whatever mix was
on the panel at ``t_k``, so rapid-fire frames chain correctly.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np

_KEEP = 16  # presentation events remembered (a camera never lags further behind)
_SAMPLES = 8  # points per exposure when the field changes during it


class LCResponse:
    def __init__(self, initial_field: np.ndarray, settle_s: float):
        self.settle_s = float(settle_s)
        self.tau = self.settle_s / math.log(1000.0) if self.settle_s > 0 else 0.0
        self.initial = np.asarray(initial_field, dtype=np.complex128)
        self.events: deque[tuple[float, np.ndarray, np.ndarray]] = deque(maxlen=_KEEP)

    def present(self, t: float, field: np.ndarray) -> None:
        """The panel starts switching to ``field`` at time ``t``."""
        field = np.asarray(field, dtype=np.complex128)
        while self.events and self.events[-1][0] >= t:  # replaced before it was shown
            self.events.pop()
        self.events.append((float(t), self.field_at(t), field))

    def _weight(self, dt: float) -> float:
        # 1 ns of slack: "presented + settle_s" computed elsewhere may round just below.
        if dt >= self.settle_s - 1e-9 or self.tau == 0.0:
            return 0.0
        return math.exp(-dt / self.tau)

    def field_at(self, t: float) -> np.ndarray:
        for t_k, old, new in reversed(self.events):
            if t_k <= t:
                w = self._weight(t - t_k)
                return new if w == 0.0 else old * w + new * (1.0 - w)
        return self.events[0][1] if self.events else self.initial

    def exposure_fields(self, t0: float, duration: float) -> tuple[np.ndarray, np.ndarray]:
        """(weights [K], fields [K, n_cells]) whose weighted |T·E|² is the exposure's mean.

        A single settled field (K = 1) when nothing changes during the exposure.
        """
        t1 = t0 + duration
        settled = True
        for t_k, _old, _new in reversed(self.events):
            if t_k < t1 and t_k > t0:
                settled = False  # a new frame arrives mid-exposure
                break
            if t_k <= t0:
                settled = self._weight(t0 - t_k) == 0.0
                break
        if settled:
            return np.ones(1), self.field_at(t0)[None, :]
        times = t0 + (np.arange(_SAMPLES) + 0.5) * duration / _SAMPLES
        fields = np.stack([self.field_at(float(t)) for t in times])
        return np.full(_SAMPLES, 1.0 / _SAMPLES), fields

    def state_dict(self) -> dict[str, Any]:
        n = len(self.events)
        shape = (n, self.initial.size)
        return {
            "t": np.array([e[0] for e in self.events], dtype=np.float64),
            "old": np.array([e[1] for e in self.events]).reshape(shape),
            "new": np.array([e[2] for e in self.events]).reshape(shape),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.events.clear()
        for t, old, new in zip(state["t"], state["old"], state["new"]):
            self.events.append(
                (float(t), np.array(old, np.complex128), np.array(new, np.complex128))
            )
