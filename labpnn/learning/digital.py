"""Trainable digital linear maps, initialised from a trainer's own random generator.

``torch.nn.Linear`` initialises from the global RNG; trainers must be deterministic for a seed
without touching global state, so they build their linear maps here instead.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["OutputStandardiser", "seeded_linear"]


def seeded_linear(
    n_in: int, n_out: int, generator: torch.Generator, bias: bool = True
) -> nn.Linear:
    """A ``Linear(n_in, n_out)`` with PyTorch's default U(-1/sqrt(n_in), 1/sqrt(n_in)) init."""
    linear = nn.utils.skip_init(nn.Linear, n_in, n_out, bias=bias)
    bound = 1.0 / n_in**0.5
    with torch.no_grad():
        linear.weight.copy_(torch.rand(n_out, n_in, generator=generator) * 2 * bound - bound)
        if bias:
            linear.bias.copy_(torch.rand(n_out, generator=generator) * 2 * bound - bound)
    return linear


class OutputStandardiser(nn.Module):
    """Per-output centre and scale of a physical layer's measurements, ``(P(x) - mean) / std``.

    Why: the digital map after a physical layer has a bias and a fixed learning rate, so
    measurements in arbitrary units (power in W, camera counts on a dark level of 3000, a
    common-mode offset a thousand times the signal) leave it at chance although the same physics
    in other units trains well. The statistics are those of the training measurements seen so far
    (exact until ``window`` rows, then exponentially weighted with a memory of about ``window``
    rows, since the later layers' inputs move as the earlier maps train); evaluation uses them
    without updating. Before any training measurement, a batch is standardised on its own
    statistics.
    """

    def __init__(self, n: int, window: int = 10_000) -> None:
        super().__init__()
        self.window = int(window)
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(n, dtype=torch.float64))
        self.register_buffer("var", torch.ones(n, dtype=torch.float64))

    def update(self, x: torch.Tensor) -> None:
        """Merge the finite rows of a training batch into the running statistics."""
        rows = x[torch.isfinite(x).all(dim=1)].double()
        n_new = rows.shape[0]
        if n_new == 0:
            return
        old = min(float(self.count), max(self.window - n_new, 0))
        total = old + n_new
        batch_mean = rows.mean(dim=0)
        delta = batch_mean - self.mean
        batch_var = rows.var(dim=0, unbiased=False)
        self.var.copy_(
            (old * self.var + n_new * batch_var + delta**2 * old * n_new / total) / total
        )
        self.mean.add_(delta * n_new / total)
        self.count.fill_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean, var = self.mean, self.var
        if float(self.count) == 0:
            # statistics are constants to autograd: a gradient flows through the affine map only
            rows = x.detach()[torch.isfinite(x).all(dim=1)].double()
            if rows.shape[0] == 0:
                return x
            mean, var = rows.mean(dim=0), rows.var(dim=0, unbiased=False)
        std = var.sqrt()
        # a constant output stays 0; the floor keeps it from amplifying rounding noise
        std = std.clamp_min(max(float(std.max()) * 1e-6, 1e-300))
        return ((x.double() - mean) / std).float()
