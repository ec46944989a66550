"""The part every bench shares: batching, query counting and hardware time."""

from __future__ import annotations

import time
from typing import Any

import numpy as np


class BenchLayer:
    """A PhysicalLayer over a connected station.

    Subclasses implement :meth:`measure` on a numpy batch ``[B, n_in]`` and return
    ``[B, n_out]``. Hardware time is measured on the station's clock, so a simulated
    bench in ``fast`` mode reports the time the real hardware would have taken.
    """

    n_in: int
    n_out: int

    def __init__(self, station: Any):
        self.station = station
        self.clock = station.clock
        self.queries = 0
        self.hardware_s = 0.0
        self.direct = bool(
            station.simulated and station.bench.simulation.get("transport", "full") == "direct"
        )

    def measure(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x: Any) -> Any:
        import torch

        batch = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        if batch.ndim == 1:
            batch = batch[None, :]
        if batch.shape[1] != self.n_in:
            raise ValueError(
                f"{type(self).__name__} takes {self.n_in} inputs, got {batch.shape[1]}"
            )
        t_clock, t_wall = self.clock.now(), time.perf_counter()
        y = self.measure(batch.astype(np.float64))
        elapsed = self.clock.now() - t_clock
        self.hardware_s += elapsed if elapsed > 0 else time.perf_counter() - t_wall
        self.queries += len(batch)
        return torch.as_tensor(np.asarray(y), dtype=torch.float32)

    # Simulated worlds can be checkpointed with the training state; real benches cannot.
    def state_dict(self) -> dict[str, Any]:
        world = self.station.world
        return world.state_dict() if world is not None else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.station.world is not None and state:
            self.station.world.load_state_dict(state)
