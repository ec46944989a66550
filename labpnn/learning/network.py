"""The hybrid network that PAT, in-silico training and SPSA train: digital and physical in turn.

``x -> D_0 -> P_0 -> D_1 -> P_1 -> ... -> P_{K-1} -> readout -> logits``. Each D_k is a
trainable linear map to ``P_k.n_in``; the P_k are fixed physical layers and supply the
nonlinearity; the readout maps ``P_{K-1}.n_out`` to class scores. With ``skip`` (PhyLL's
skip concatenation, so that the two can be compared on one architecture) the map after P_k
(the next D, or the readout) also sees P_k's input: it reads ``[P_k(a_k) | a_k]``, of width
``n_out + n_in``. The network holds only the
digital parameters: how the physical step is carried out (measured, physics-aware, or on a twin)
is passed to :meth:`HybridNetwork.forward` by the trainer.

With ``standardise`` (the trainers' default) every physical output is centred and scaled per feature
(:class:`~labpnn.learning.digital.OutputStandardiser`) before the next digital map sees it, so
the units of a measurement (W or counts, a dark level, a common-mode offset) do not matter. The
same standardiser serves the measured path, the twin path and evaluation; its statistics are
constants to autograd (the gradient flows through the affine map) and are learnt from training
passes only.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from labpnn.datasets import Dataset
from labpnn.learning.costs import linear_flops
from labpnn.learning.digital import OutputStandardiser, seeded_linear
from labpnn.learning.trainer import Trainer, mean_or_none, predicted_classes
from labpnn.physical import physical_layers, positive_int

__all__ = ["HybridNetwork", "HybridTrainer"]

PhysicalStep = Callable[[int, Tensor], Tensor]


class HybridNetwork(nn.Module):
    """Trainable digital maps around fixed physical layers (given by their widths), with an
    optional per-feature standardiser after each physical layer (buffers, no parameters)."""

    def __init__(
        self,
        n_in: int,
        physical_widths: Sequence[tuple[int, int]],
        n_classes: int,
        generator: torch.Generator,
        standardise: bool = False,
        skip: bool = False,
    ) -> None:
        super().__init__()
        self.skip = bool(skip)
        # what the map after each physical layer reads: its output, and with skip its input
        after = [n_out + (n_in_k if self.skip else 0) for n_in_k, n_out in physical_widths]
        widths_in = [n_in, *after[:-1]]
        self.digital = nn.ModuleList(
            seeded_linear(width_in, layer_in, generator)
            for width_in, (layer_in, _) in zip(widths_in, physical_widths)
        )
        self.readout = seeded_linear(after[-1], n_classes, generator)
        self.standardisers = nn.ModuleList(
            OutputStandardiser(n_out) for _, n_out in physical_widths if standardise
        )

    def forward(
        self, x: Tensor, physical_step: PhysicalStep, *, learn_statistics: bool = False
    ) -> Tensor:
        """Class scores; ``physical_step(k, h)`` stands for physical layer k applied to ``h``.

        ``learn_statistics=True`` (training passes only) merges each physical output into its
        standardiser's statistics before it is standardised.
        """
        h = x
        for k, digital in enumerate(self.digital):
            a = digital(h)
            h = self.standardised(k, physical_step(k, a), learn=learn_statistics)
            if self.skip:
                h = torch.cat([h, a], dim=1)
        return self.readout(h)

    def standardised(self, k: int, measured: Tensor, *, learn: bool = False) -> Tensor:
        """Physical layer k's output as the next digital map sees it."""
        if not self.standardisers:
            return measured
        if learn:
            self.standardisers[k].update(measured.detach())
        return self.standardisers[k](measured)

    def flops(self, n_samples: int, backward: bool = False) -> float:
        """Digital FLOPs of the linear maps and standardisers for ``n_samples`` (forward, or
        forward and backward)."""
        linears = [*self.digital, self.readout]
        # a standardiser subtracts and divides per element (about as much again backward)
        per_element = 6 if backward else 2
        return sum(
            linear_flops(linear.in_features, linear.out_features, n_samples, backward)
            for linear in linears
        ) + sum(per_element * s.mean.numel() * n_samples for s in self.standardisers)


class HybridTrainer(Trainer):
    """Shared life cycle of trainers of a :class:`HybridNetwork`: batches, prediction, state.

    Prediction runs the network on the physical layers themselves (measured), whatever the
    training used. ``standardise`` puts a standardiser after every physical layer (see the
    module docstring); turn it off for layers that are standardised already, as the training
    procedures' ``LabLayer`` is. Subclasses implement :meth:`_train_batch`.
    """

    def __init__(
        self,
        layers: Sequence,
        n_classes: int,
        *,
        n_in: int | None,
        lr: float,
        batch_size: int | None,
        seed: int,
        divergence_bound: float,
        standardise: bool = True,
        skip: bool = False,
    ) -> None:
        super().__init__(seed=seed, divergence_bound=divergence_bound)
        if not layers:
            raise ValueError(f"{type(self).__name__} needs at least one physical layer")
        self.layers = physical_layers(layers)
        if n_in is None:
            self.n_inputs = int(self.layers[0].n_in)
        else:
            self.n_inputs = positive_int(n_in, "n_in")
            self._input_width_origin = (
                f"the n_in={self.n_inputs} it was built with",
                "build it with n_in equal to the dataset's n_inputs",
            )
        self.n_classes = positive_int(n_classes, "n_classes")
        self.lr = float(lr)
        self.batch_size = self._batch_size(batch_size)
        widths = [(int(layer.n_in), int(layer.n_out)) for layer in self.layers]
        self.standardise = bool(standardise)
        self.skip = bool(skip)
        self.network = HybridNetwork(
            self.n_inputs, widths, self.n_classes, self.generator, standardise=self.standardise,
            skip=self.skip,
        )  # fmt: skip
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=self.lr)

    @abstractmethod
    def _train_batch(self, x: Tensor, y: Tensor, losses: list[float]) -> None:
        """Update the digital parameters on one batch; append the batch loss to ``losses``."""

    def _train_epoch(self, ds: Dataset) -> dict:
        losses: list[float] = []
        for index in self._batches(ds.x_train.shape[0], self.batch_size):
            x, y = ds.x_train[index], ds.y_train[index]
            self._run_batch(lambda x=x, y=y: self._train_batch(x, y, losses))
        return {"loss": mean_or_none(losses)}

    def logits(self, x: Tensor) -> Tensor:
        """Class scores with every physical layer measured (evaluation queries), in calls of at
        most ``batch_size`` rows (see :meth:`_evaluation_chunks`)."""
        x = self._check_width(x)
        step = self._measured_step(evaluation=True)
        with torch.no_grad():
            scores = [self.network(x[chunk], step) for chunk in self._evaluation_chunks(len(x))]
        self._costs.digital_flops += self.network.flops(x.shape[0])
        return torch.cat(scores) if scores else torch.zeros(0, self.n_classes)

    def predict(self, x: Tensor) -> Tensor:
        return predicted_classes(self.logits(x))

    def _measured_step(self, *, evaluation: bool = False) -> PhysicalStep:
        return lambda k, h: self._measure(self.layers[k], h, evaluation=evaluation)

    def _stateful(self) -> dict:
        return {"network": self.network, "optimizer": self.optimizer}

    def _physical_layers(self) -> list:
        return self.layers

    def _comparable_config(self, saved: dict) -> dict:
        saved = super()._comparable_config(saved)
        # checkpoints from before the outputs' standardisation trained without it, and those
        # from before the skip option had none
        saved.setdefault("standardise", False)
        saved.setdefault("skip", False)
        return saved

    def _config(self) -> dict:
        return {
            **super()._config(),
            "layers": [repr(layer) for layer in self.layers],
            "n_in": self.n_inputs,
            "n_classes": self.n_classes,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "standardise": self.standardise,
            "skip": self.skip,
        }
