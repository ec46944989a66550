"""Digital twins: differentiable surrogates of a physical layer, fitted on measured pairs.

PAT needs a twin for its backward pass and in-silico training needs one for everything. A twin is
an MLP on standardised inputs and outputs, fitted by least squares on (input, measured output)
pairs. The measurements are hardware queries, so :func:`fit_twin` books them (and the fitting
FLOPs) in ``twin.report``, and the trainers that use the twin add them to their costs (S8).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from labpnn.learning.costs import FORWARD_AND_BACKWARD, Costs, measure
from labpnn.learning.digital import seeded_linear

__all__ = ["DigitalTwin", "MeasuredPairs", "fit_twin", "measure_pairs", "nrmse"]

InputSampler = Callable[[int, torch.Generator], Tensor]


class DigitalTwin(nn.Module):
    """An MLP model ``n_in -> hidden... -> n_out`` (SiLU, smooth Jacobians) of one physical layer.

    ``report`` holds what fitting it cost and how well it fits: ``queries``, ``hardware_s``,
    ``digital_flops``, ``skipped_samples``, ``train_nrmse`` and ``validation_nrmse`` (RMS error
    over the RMS deviation of the measured outputs from their mean; 0 is perfect, 1 is no better
    than predicting the mean).
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        hidden: Sequence[int] = (128, 128),
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        generator = generator or torch.Generator().manual_seed(0)
        self.n_in = int(n_in)
        self.n_out = int(n_out)
        widths = [self.n_in, *hidden, self.n_out]
        modules: list[nn.Module] = []
        for width_in, width_out in zip(widths[:-1], widths[1:]):
            modules += [seeded_linear(width_in, width_out, generator), nn.SiLU()]
        self.mlp = nn.Sequential(*modules[:-1])
        self.register_buffer("input_mean", torch.zeros(self.n_in))
        self.register_buffer("input_std", torch.ones(self.n_in))
        self.register_buffer("output_mean", torch.zeros(self.n_out))
        self.register_buffer("output_std", torch.ones(self.n_out))
        self.report: dict = {}

    def forward(self, x: Tensor) -> Tensor:
        standardised = (x - self.input_mean) / self.input_std
        return self.mlp(standardised) * self.output_std + self.output_mean

    @property
    def flops_per_sample(self) -> float:
        """Forward FLOPs of one sample (the linear maps)."""
        return sum(
            2.0 * m.in_features * m.out_features for m in self.mlp if isinstance(m, nn.Linear)
        )


def fit_twin(
    layer,
    n_samples: int,
    input_sampler: InputSampler,
    *,
    hidden: Sequence[int] = (128, 128),
    epochs: int = 200,
    lr: float = 1e-3,
    batch_size: int = 128,
    query_batch_size: int = 256,
    validation_fraction: float = 0.2,
    seed: int = 0,
    on_epoch: Callable[[int, int, float], None] | None = None,
) -> DigitalTwin:
    """Measure ``n_samples`` inputs from ``input_sampler(n, generator)`` and fit a twin to them.

    The sampler should cover the inputs the layer will see in training (for PAT: the range of the
    first digital layer's outputs). Inputs are sent in chunks of ``query_batch_size``; samples whose
    measurement is not finite are dropped and counted. The returned twin is frozen (no parameter
    gradients), in eval mode, with its ``report`` filled in. ``on_epoch(done, epochs, loss)`` is
    called after every fitting epoch (a procedure's progress and abort check; it may raise to stop).
    """
    pairs = measure_pairs(layer, n_samples, input_sampler, seed=seed,
                          validation_fraction=validation_fraction,
                          query_batch_size=query_batch_size, min_train=2)  # fmt: skip
    inputs, outputs, train, generator = pairs.inputs, pairs.outputs, pairs.train, pairs.generator
    twin = DigitalTwin(layer.n_in, layer.n_out, hidden, generator)
    twin.input_mean.copy_(inputs[train].mean(dim=0))
    twin.input_std.copy_(inputs[train].std(dim=0).clamp_min(1e-8))
    twin.output_mean.copy_(outputs[train].mean(dim=0))
    twin.output_std.copy_(outputs[train].std(dim=0).clamp_min(1e-8))
    optimizer = torch.optim.Adam(twin.parameters(), lr=lr)
    for epoch in range(epochs):
        total, batches = 0.0, 0
        for batch in train[torch.randperm(train.numel(), generator=generator)].split(batch_size):
            error = (twin(inputs[batch]) - outputs[batch]) / twin.output_std
            loss = error.pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, batches = total + loss.item(), batches + 1
        if on_epoch is not None:
            on_epoch(epoch + 1, epochs, total / max(1, batches))

    twin.zero_grad()
    twin.eval().requires_grad_(False)
    flops = epochs * train.numel() * FORWARD_AND_BACKWARD * twin.flops_per_sample
    twin.report = pairs.report(twin, flops)
    return twin


@dataclass
class MeasuredPairs:
    """Inputs and their measurements, split into training and validation rows, with what
    measuring them cost; ``generator`` goes on from the split (for the fitting's shuffles)."""

    inputs: Tensor
    outputs: Tensor
    train: Tensor
    validation: Tensor
    costs: Costs
    skipped: int
    generator: torch.Generator

    def report(self, twin: Callable[[Tensor], Tensor], digital_flops: float) -> dict:
        """A fitted twin's ``report``: the measuring cost, ``digital_flops``, and its NRMSE."""
        inputs, outputs, validation = self.inputs, self.outputs, self.validation
        return {
            "queries": self.costs.queries,
            "hardware_s": self.costs.hardware_s,
            "digital_flops": float(digital_flops),
            "skipped_samples": self.skipped,
            "n_train": int(self.train.numel()),
            "train_nrmse": nrmse(twin, inputs[self.train], outputs[self.train]),
            "validation_nrmse": nrmse(twin, inputs[validation], outputs[validation])
            if validation.numel()
            else None,
        }


def measure_pairs(
    layer,
    n_samples: int,
    input_sampler: InputSampler,
    *,
    seed: int,
    validation_fraction: float,
    query_batch_size: int,
    min_train: int,
) -> MeasuredPairs:
    """Measure ``n_samples`` sampled inputs on ``layer`` in chunks of ``query_batch_size``,
    drop (and count) those whose measurement is not finite, and split off a validation share;
    fewer than ``min_train`` training rows is an error."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.as_tensor(input_sampler(n_samples, generator), dtype=torch.float32)
    if inputs.shape != (n_samples, layer.n_in):
        raise ValueError(
            f"input_sampler returned shape {tuple(inputs.shape)}, expected [{n_samples}, {layer.n_in}]"
        )
    costs = Costs()
    outputs = torch.cat([measure(layer, chunk, costs) for chunk in inputs.split(query_batch_size)])
    finite = torch.isfinite(outputs).all(dim=1)
    inputs, outputs = inputs[finite], outputs[finite]
    order = torch.randperm(inputs.shape[0], generator=generator)
    n_validation = int(round(validation_fraction * inputs.shape[0]))
    validation, train = order[:n_validation], order[n_validation:]
    if train.numel() < min_train:
        raise ValueError(f"only {train.numel()} usable training samples; measure more")
    skipped = int((~finite).sum())
    return MeasuredPairs(inputs, outputs, train, validation, costs, skipped, generator)


def nrmse(twin: Callable[[Tensor], Tensor], inputs: Tensor, outputs: Tensor) -> float:
    """RMS error of ``twin`` over the RMS spread of ``outputs`` about their mean."""
    with torch.no_grad():
        error = F.mse_loss(twin(inputs), outputs)
        spread = (outputs - outputs.mean(dim=0)).pow(2).mean()
    return (error / spread.clamp_min(1e-30)).sqrt().item()
