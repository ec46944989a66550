"""What training and evaluation cost: hardware queries, hardware seconds and digital FLOPs.

Comparing learning algorithms on hardware (SCIENCE.md S8) needs every cost on one ledger:
samples sent to physical layers (training, evaluation and the data used to fit digital twins),
the time spent in hardware, and the multiply-adds of the digital parts.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from torch import Tensor

from labpnn.physical import call_on_finite_rows

__all__ = ["Costs", "linear_flops", "measure"]

# A backward pass through a linear map costs about twice its forward pass.
FORWARD_AND_BACKWARD = 3


@dataclass
class Costs:
    """Running totals. ``queries`` includes ``eval_queries`` and ``twin_queries``."""

    queries: int = 0
    hardware_s: float = 0.0
    digital_flops: float = 0.0
    skipped_batches: int = 0
    eval_queries: int = 0
    twin_queries: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def linear_flops(n_in: int, n_out: int, n_samples: int, backward: bool = False) -> float:
    """FLOPs of a dense ``n_in -> n_out`` map on ``n_samples`` (2 per multiply-add)."""
    flops = 2.0 * n_in * n_out * n_samples
    return flops * FORWARD_AND_BACKWARD if backward else flops


def measure(layer, x: Tensor, costs: Costs, *, evaluation: bool = False) -> Tensor:
    """Send ``x`` to a physical layer and book its queries and hardware time in ``costs``.

    The hardware time comes from the layer's own ``hardware_s`` counter when it has one, otherwise
    from the wall time of the call. ``evaluation=True`` also books the queries as evaluation
    queries. The output is returned as float32 ``[B, n_out]``, NaN and Inf included (the caller
    decides what a bad frame means); a wrong shape raises ``ValueError``. Rows of ``x`` that are
    not finite (a bad frame in the layer before) are not sent and not counted; they come back NaN.
    """
    timer_before = getattr(layer, "hardware_s", None)
    start = time.perf_counter()
    y, sent = call_on_finite_rows(layer, x, layer.n_out)
    wall_s = time.perf_counter() - start
    timer_after = getattr(layer, "hardware_s", None)
    if isinstance(timer_before, int | float) and isinstance(timer_after, int | float):
        costs.hardware_s += float(timer_after - timer_before)
    else:
        costs.hardware_s += wall_s
    costs.queries += sent
    if evaluation:
        costs.eval_queries += sent
    return y
