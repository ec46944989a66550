"""Hinton's forward-forward algorithm (2022): the all-digital reference for PhyLL.

A ReLU MLP (e.g. n_in -> 500 -> 500) whose layers are trained greedily and locally. Each layer
sees the previous activity length-normalised (so it cannot pass on the previous layer's goodness),
its goodness is the mean squared activity (Hinton's sum of squares divided by the layer width, so
one threshold suits any width; the reference PyTorch implementation does the same), and
``p(positive) = sigmoid(G - threshold)``. The loss is the logistic loss on that probability for
positives (true label embedded in the first slots) and negatives (a random wrong label).
Prediction tries every label and sums the goodness of all layers.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from labpnn.learning.digital import seeded_linear
from labpnn.learning.local import LocalGoodnessTrainer
from labpnn.physical import positive_int

__all__ = ["ForwardForward"]


class ForwardForward(LocalGoodnessTrainer):
    """Forward-forward on a digital ReLU MLP; ``inner_steps`` Adam steps per layer per batch."""

    _input_width_origin = (
        "the n_in it was built with",
        "build it with n_in equal to the dataset's n_inputs",
    )

    def __init__(
        self,
        n_in: int,
        n_classes: int,
        hidden: Sequence[int] = (500, 500),
        *,
        threshold: float = 2.0,
        lr: float = 0.03,
        inner_steps: int = 1,
        batch_size: int | None = None,
        n_label_slots: int | None = None,
        seed: int = 0,
        divergence_bound: float = 1e6,
    ) -> None:
        super().__init__(seed=seed, divergence_bound=divergence_bound)
        if not hidden:
            raise ValueError("forward-forward needs at least one hidden layer")
        self.n_inputs = positive_int(n_in, "n_in")
        self.n_classes = positive_int(n_classes, "n_classes")
        self.n_label_slots = positive_int(n_label_slots or n_classes, "n_label_slots")
        if not 2 <= self.n_classes <= self.n_label_slots < self.n_inputs:
            raise ValueError(
                f"need 2 <= n_classes ({self.n_classes}) <= n_label_slots ({self.n_label_slots}) "
                f"< n_in ({self.n_inputs})"
            )
        self.hidden = [positive_int(width, "a hidden width") for width in hidden]
        self.threshold = float(threshold)
        self.lr = float(lr)
        self.inner_steps = positive_int(inner_steps, "inner_steps")
        self.batch_size = self._batch_size(batch_size)
        widths = [self.n_inputs, *self.hidden]
        self.linears = nn.ModuleList(
            seeded_linear(width_in, width_out, self.generator)
            for width_in, width_out in zip(widths[:-1], widths[1:])
        )
        self.optimizers = [
            torch.optim.Adam(linear.parameters(), lr=self.lr) for linear in self.linears
        ]

    @property
    def local_maps(self) -> nn.ModuleList:
        return self.linears

    def _layer_input(self, k: int, h: Tensor, *, evaluation: bool = False) -> Tensor:
        """The previous activity length-normalised, so a layer cannot pass its goodness on."""
        return h / (h.norm(dim=1, keepdim=True) + 1e-4)

    def _activity(self, k: int, z: Tensor) -> Tensor:
        return F.relu(self.linears[k](z))

    def _goodness(self, k: int, h: Tensor) -> Tensor:
        return h.pow(2).mean(dim=1)

    def _local_loss(self, good_positive: Tensor, good_negative: Tensor) -> Tensor:
        # -log p(pos) for positives and -log(1 - p(pos)) for negatives, p = sigmoid(G - threshold)
        margins = torch.cat([self.threshold - good_positive, good_negative - self.threshold])
        return F.softplus(margins).mean()

    def _stateful(self) -> dict:
        parts: dict = {"linears": self.linears}
        parts.update({f"optimizer.{k}": opt for k, opt in enumerate(self.optimizers)})
        return parts

    def _config(self) -> dict:
        return {
            **super()._config(),
            "n_in": self.n_inputs,
            "n_classes": self.n_classes,
            "n_label_slots": self.n_label_slots,
            "hidden": self.hidden,
            "threshold": self.threshold,
            "lr": self.lr,
            "inner_steps": self.inner_steps,
            "batch_size": self.batch_size,
        }
