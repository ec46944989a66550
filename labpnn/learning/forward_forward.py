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

from labpnn.datasets import Dataset, embed_labels
from labpnn.learning.costs import linear_flops
from labpnn.learning.digital import seeded_linear
from labpnn.learning.goodness import wrong_labels
from labpnn.learning.trainer import Trainer, mean_or_none, predicted_classes

__all__ = ["ForwardForward"]


class ForwardForward(Trainer):
    """Forward-forward on a digital ReLU MLP; ``inner_steps`` Adam steps per layer per batch."""

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
        self.n_inputs = int(n_in)
        self.n_classes = int(n_classes)
        self.n_label_slots = int(n_label_slots or n_classes)
        if not 2 <= self.n_classes <= self.n_label_slots < self.n_inputs:
            raise ValueError(
                f"need 2 <= n_classes ({self.n_classes}) <= n_label_slots ({self.n_label_slots}) "
                f"< n_in ({self.n_inputs})"
            )
        self.hidden = [int(width) for width in hidden]
        self.threshold = float(threshold)
        self.lr = float(lr)
        self.inner_steps = int(inner_steps)
        self.batch_size = batch_size
        widths = [self.n_inputs, *self.hidden]
        self.linears = nn.ModuleList(
            seeded_linear(width_in, width_out, self.generator)
            for width_in, width_out in zip(widths[:-1], widths[1:])
        )
        self.optimizers = [
            torch.optim.Adam(linear.parameters(), lr=self.lr) for linear in self.linears
        ]

    def goodness_per_label(self, x: Tensor) -> Tensor:
        """``[B, n_classes]``: goodness summed over layers with each label embedded in turn."""
        self._check_width(x)
        n = x.shape[0]
        h = torch.cat(
            [embed_labels(x, label, self.n_label_slots) for label in range(self.n_classes)]
        )
        total = torch.zeros(h.shape[0])
        with torch.no_grad():
            for linear in self.linears:
                h = self._activity(linear, h)
                total += self._goodness(h)
                self._costs.digital_flops += linear_flops(
                    linear.in_features, linear.out_features, h.shape[0]
                )
        return total.view(self.n_classes, n).T

    def predict(self, x: Tensor) -> Tensor:
        return predicted_classes(self.goodness_per_label(x))

    def _train_epoch(self, ds: Dataset) -> dict:
        layer_losses: list[list[float]] = [[] for _ in self.linears]
        for index in self._batches(ds.x_train.shape[0], self.batch_size):
            self._train_batch(ds.x_train[index], ds.y_train[index], layer_losses)
        means = [mean_or_none(losses) for losses in layer_losses]
        return {"loss": sum(means), "layer_losses": means}

    def _train_batch(self, x: Tensor, y: Tensor, layer_losses: list[list[float]]) -> None:
        n = x.shape[0]
        negative = wrong_labels(y, self.n_classes, self.generator)
        h = torch.cat(
            [embed_labels(x, y, self.n_label_slots), embed_labels(x, negative, self.n_label_slots)]
        )
        for k, (linear, optimizer) in enumerate(zip(self.linears, self.optimizers)):
            for _ in range(self.inner_steps):
                margin = self._goodness(self._activity(linear, h)) - self.threshold
                # -log p(pos) for positives and -log(1 - p(pos)) for negatives.
                loss = F.softplus(torch.cat([-margin[:n], margin[n:]])).mean()
                layer_losses[k].append(self._check_loss(loss))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                h = self._activity(linear, h)
            widths = (linear.in_features, linear.out_features)
            step_flops = linear_flops(*widths, 2 * n, backward=True)
            self._costs.digital_flops += self.inner_steps * step_flops + linear_flops(
                *widths, 2 * n
            )

    @staticmethod
    def _activity(linear: nn.Linear, h: Tensor) -> Tensor:
        """ReLU activity of one layer on the length-normalised previous activity."""
        return F.relu(linear(h / (h.norm(dim=1, keepdim=True) + 1e-4)))

    @staticmethod
    def _goodness(h: Tensor) -> Tensor:
        return h.pow(2).mean(dim=1)

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
