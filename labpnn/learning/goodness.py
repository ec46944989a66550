"""Goodness functions and negative labels for the forward-forward family (PhyLL, Hinton's FF).

A layer is trained so that its goodness is high for an input carrying the true label (positive)
and low for the same input carrying a wrong label (negative); prediction tries every label.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["cosine_goodness", "sum_of_squares_goodness", "random_prototype", "wrong_labels"]


def cosine_goodness(h: Tensor, prototype: Tensor) -> Tensor:
    """PhyLL's goodness ``cos(|h|, p)`` per row: scale-free, so no threshold is needed."""
    return F.cosine_similarity(h.abs(), prototype.expand_as(h), dim=1, eps=1e-6)


def sum_of_squares_goodness(h: Tensor) -> Tensor:
    """Hinton's goodness ``sum(h**2)`` per row."""
    return h.pow(2).sum(dim=1)


def random_prototype(width: int, generator: torch.Generator) -> Tensor:
    """A fixed random unit vector (Gaussian direction) that a layer's |output| should align with."""
    prototype = torch.randn(width, generator=generator)
    return prototype / prototype.norm()


def wrong_labels(y: Tensor, n_classes: int, generator: torch.Generator) -> Tensor:
    """A uniformly random label different from ``y`` for every sample."""
    offset = torch.randint(1, n_classes, y.shape, generator=generator)
    return (y + offset) % n_classes
