"""Greedy layer-local training with label-embedded positives and negatives: PhyLL and FF.

Both train each layer on its own: a positive carries the sample's true label in the label slots,
a negative a uniformly random wrong one; each layer takes ``inner_steps`` optimiser steps on one
batch, on its input computed once (for PhyLL, once measured), and hands a detached output to the
next layer. Prediction embeds every label in turn and takes the argmax of the goodness summed over
layers. What differs between the two is what a layer sees, how it responds and what it is scored
on, so those are the hooks a subclass implements.
"""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import Tensor, nn

from labpnn.datasets import Dataset, embed_labels
from labpnn.learning.costs import linear_flops
from labpnn.learning.goodness import wrong_labels
from labpnn.learning.trainer import Trainer, mean_or_none, predicted_classes

__all__ = ["LocalGoodnessTrainer"]


class LocalGoodnessTrainer(Trainer):
    """The shared loop; a subclass sets ``n_classes``, ``n_label_slots``, ``inner_steps``,
    ``batch_size``, :attr:`local_maps` and ``optimizers`` (one per map)."""

    n_classes: int
    n_label_slots: int
    inner_steps: int
    batch_size: int | None
    optimizers: list[torch.optim.Optimizer]

    @property
    @abstractmethod
    def local_maps(self) -> nn.ModuleList:
        """The trainable maps, one per layer, in order."""

    @abstractmethod
    def _layer_input(self, k: int, h: Tensor, *, evaluation: bool = False) -> Tensor:
        """What map k acts on, given the previous layer's output ``h`` (measured, for PhyLL)."""

    @abstractmethod
    def _activity(self, k: int, z: Tensor) -> Tensor:
        """Layer k's output for the input ``z`` of its map."""

    @abstractmethod
    def _goodness(self, k: int, h: Tensor) -> Tensor:
        """Layer k's goodness per row of its output."""

    @abstractmethod
    def _local_loss(self, good_positive: Tensor, good_negative: Tensor) -> Tensor:
        """The layer-local loss of one batch, from the goodness of positives and negatives."""

    # -- prediction ---------------------------------------------------------------------
    def goodness_per_label(self, x: Tensor) -> Tensor:
        """``[B, n_classes]``: goodness summed over layers with each label embedded in turn.

        A layer gets the samples in chunks (:meth:`_evaluation_chunks`), each with every label,
        so one call holds at most ``batch_size × n_classes`` rows (or about 1024 rows when
        training is full-batch), not ``B × n_classes``; once the outputs' statistics exist (after
        the first training batch) the result does not depend on the chunking.
        """
        x = self._check_width(x)
        chunks = self._evaluation_chunks(x.shape[0], rows_per_sample=self.n_classes)
        if not chunks:
            return torch.zeros(0, self.n_classes)
        return torch.cat([self._goodness_of_chunk(x[chunk]) for chunk in chunks])

    def _goodness_of_chunk(self, x: Tensor) -> Tensor:
        """``[n, n_classes]`` for one chunk of samples, all labels in one call per layer."""
        n = x.shape[0]
        h = torch.cat(
            [embed_labels(x, label, self.n_label_slots) for label in range(self.n_classes)]
        )
        total = torch.zeros(h.shape[0])
        with torch.no_grad():
            for k, linear in enumerate(self.local_maps):
                h = self._activity(k, self._layer_input(k, h, evaluation=True))
                total += self._goodness(k, h)
                self._costs.digital_flops += linear_flops(
                    linear.in_features, linear.out_features, h.shape[0]
                )
        return total.view(self.n_classes, n).T

    def predict(self, x: Tensor) -> Tensor:
        return predicted_classes(self.goodness_per_label(x))

    # -- training -----------------------------------------------------------------------
    def _train_epoch(self, ds: Dataset) -> dict:
        layer_losses: list[list[float]] = [[] for _ in self.local_maps]
        for index in self._batches(ds.x_train.shape[0], self.batch_size):
            x, y = ds.x_train[index], ds.y_train[index]
            self._run_batch(lambda x=x, y=y: self._train_batch(x, y, layer_losses))
        means = [mean_or_none(losses) for losses in layer_losses]
        total = None if None in means else sum(means)
        return {"loss": total, "layer_losses": means}

    def _check_labels(self, ds: Dataset) -> None:
        """Also refuse data with fewer label slots than this model embeds into: a label
        beyond the data's slots would silently overwrite a feature."""
        super()._check_labels(ds)
        slots = getattr(ds, "n_label_slots", None)
        if slots is not None and self.n_label_slots > slots:
            raise ValueError(
                f"{type(self).__name__} embeds labels in {self.n_label_slots} slots, but the data "
                f"have {slots} label slots before the features; build it with n_classes <= {slots} "
                f"(and n_label_slots={slots})"
            )

    def _train_batch(self, x: Tensor, y: Tensor, layer_losses: list[list[float]]) -> None:
        """Greedy layer-local update of every map on one batch of positives and negatives."""
        n = x.shape[0]
        negative = wrong_labels(y, self.n_classes, self.generator)
        h = torch.cat(
            [embed_labels(x, y, self.n_label_slots), embed_labels(x, negative, self.n_label_slots)]
        )
        for k, (linear, optimizer) in enumerate(zip(self.local_maps, self.optimizers)):
            z = self._layer_input(k, h)
            for _ in range(self.inner_steps):
                goodness = self._goodness(k, self._activity(k, z))
                loss = self._local_loss(goodness[:n], goodness[n:])
                layer_losses[k].append(self._check_loss(loss))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            with torch.no_grad():
                h = self._activity(k, z)
            widths = (linear.in_features, linear.out_features)
            step_flops = linear_flops(*widths, 2 * n, backward=True)
            self._costs.digital_flops += self.inner_steps * step_flops + linear_flops(
                *widths, 2 * n
            )
