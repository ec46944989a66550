"""Zeroth-order training by SPSA (simultaneous perturbation stochastic approximation).

A plug-in example of the trainer interface for model-free training of a
:class:`~labpnn.learning.network.HybridNetwork`. For each batch, all digital parameters θ are
perturbed together by ``±c·Δ`` with a random Rademacher direction Δ; the two measured losses give
the gradient estimate ``ĝ = (L(θ + cΔ) - L(θ - cΔ)) / (2c) · Δ``, averaged over
``n_perturbations`` directions, which Adam then applies. It needs no twin and no backward pass,
at the price of two hardware forward passes per direction and a noisy gradient.

With ``standardise`` (the default) both losses of a pair must be scored with the same output
statistics, so they are frozen during a batch and updated from its measurements afterwards; the
very first batch is preceded by one unperturbed measured pass that provides them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from labpnn.learning.network import HybridTrainer
from labpnn.physical import positive_int

__all__ = ["SPSATrainer"]


class SPSATrainer(HybridTrainer):
    """SPSA gradient estimates fed to Adam; ``perturbation`` is c, in units of the parameters."""

    def __init__(
        self,
        layers: Sequence,
        n_classes: int,
        *,
        n_in: int | None = None,
        lr: float = 0.01,
        perturbation: float = 0.01,
        n_perturbations: int = 1,
        batch_size: int | None = None,
        standardise: bool = True,
        skip: bool = False,
        seed: int = 0,
        divergence_bound: float = 1e6,
    ) -> None:
        super().__init__(
            layers,
            n_classes,
            n_in=n_in,
            lr=lr,
            batch_size=batch_size,
            seed=seed,
            divergence_bound=divergence_bound,
            standardise=standardise,
            skip=skip,
        )
        if not perturbation > 0:
            raise ValueError(f"need perturbation > 0, got {perturbation}")
        self.perturbation = float(perturbation)
        self.n_perturbations = positive_int(n_perturbations, "n_perturbations")

    def _train_batch(self, x: Tensor, y: Tensor, losses: list[float]) -> None:
        parameters = list(self.network.parameters())
        theta = torch.nn.utils.parameters_to_vector(parameters).detach()
        gradient = torch.zeros_like(theta)
        loss_sum = 0.0
        if any(float(standardiser.count) == 0 for standardiser in self.network.standardisers):
            with torch.no_grad():  # the first statistics, from one unperturbed pass
                self.network(x, self._measured_step(), learn_statistics=True)
            self._costs.digital_flops += self.network.flops(x.shape[0])
        measured: list[list[Tensor]] = [[] for _ in self.layers]
        try:
            for _ in range(self.n_perturbations):
                direction = torch.randint(0, 2, theta.shape, generator=self.generator) * 2.0 - 1.0
                loss_plus = self._loss_at(theta + self.perturbation * direction, x, y, measured)
                loss_minus = self._loss_at(theta - self.perturbation * direction, x, y, measured)
                gradient += (loss_plus - loss_minus) / (2 * self.perturbation) * direction
                loss_sum += (loss_plus + loss_minus) / 2
        finally:
            _assign(parameters, theta)
        losses.append(self._check_loss(torch.tensor(loss_sum / self.n_perturbations)))
        for standardiser, outputs in zip(self.network.standardisers, measured):
            standardiser.update(torch.cat(outputs))
        _assign_gradients(parameters, gradient / self.n_perturbations)
        self.optimizer.step()
        self._costs.digital_flops += 2 * self.n_perturbations * self.network.flops(x.shape[0])

    def _loss_at(self, theta: Tensor, x: Tensor, y: Tensor, measured: list[list[Tensor]]) -> float:
        """Cross-entropy measured with the digital parameters set to ``theta``; each physical
        layer's outputs are appended to ``measured[k]``."""
        _assign(list(self.network.parameters()), theta)
        step = self._measured_step()

        def recorded(k: int, h: Tensor) -> Tensor:
            measured[k].append(step(k, h))
            return measured[k][-1]

        with torch.no_grad():
            return F.cross_entropy(self.network(x, recorded), y).item()

    def _config(self) -> dict:
        return {
            **super()._config(),
            "perturbation": self.perturbation,
            "n_perturbations": self.n_perturbations,
        }


def _assign(parameters: list[torch.nn.Parameter], vector: Tensor) -> None:
    """Copy a flat vector into the parameters in place (their storage stays their own)."""
    with torch.no_grad():
        for parameter, chunk in zip(parameters, vector.split([p.numel() for p in parameters])):
            parameter.copy_(chunk.view_as(parameter))


def _assign_gradients(parameters: list[torch.nn.Parameter], vector: Tensor) -> None:
    for parameter, chunk in zip(parameters, vector.split([p.numel() for p in parameters])):
        parameter.grad = chunk.view_as(parameter).clone()
