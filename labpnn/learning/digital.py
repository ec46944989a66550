"""Trainable digital linear maps, initialised from a trainer's own random generator.

``torch.nn.Linear`` initialises from the global RNG; trainers must be deterministic for a seed
without touching global state, so they build their linear maps here instead.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["seeded_linear"]


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
