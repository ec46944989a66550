"""Physical local learning (PhyLL; Momeni, Rahmani et al., Science 2023): training without a model.

Layer k is a fixed physical transform P_k followed by a trainable digital linear map W_k::

    h_{k+1} = W_k · [P_k(h_k), h_k]     (skip=True: acoustic and microwave benches)
    h_{k+1} = W_k · P_k(h_k)            (skip=False: optical bench)

The first physical layer receives the label-embedded input itself, so the dataset's width must
equal ``layers[0].n_in``. W_k maps to the next physical layer's ``n_in``; the last W maps to
``out_width``, by default the last physical layer's ``n_in`` (as in the published 40 -> 20
acoustic network). Each W_k is trained greedily and locally: positives carry the true label,
negatives a uniformly random wrong one, the goodness is ``cos(|h_{k+1}|, p_k)`` against a fixed
random unit prototype p_k (or ``sum(h**2)``), and the loss is ``softplus(-alpha (G_pos - G_neg))``.
P_k is measured once per batch and reused for all ``inner_steps`` Adam steps of W_k, because W_k
comes after it; outputs are detached before the next layer. No model of P is ever needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from labpnn.learning.digital import OutputStandardiser, seeded_linear
from labpnn.learning.goodness import cosine_goodness, random_prototype, sum_of_squares_goodness
from labpnn.learning.local import LocalGoodnessTrainer
from labpnn.physical import physical_layers, positive_int

__all__ = ["PhyLL"]

GOODNESS_KINDS = ("cosine", "sumsq")


class PhyLL(LocalGoodnessTrainer):
    """PhyLL on a stack of physical layers.

    Prediction tries every label and takes the argmax of the goodness summed over layers, so
    classifying one sample sends ``n_classes`` samples through every physical layer; those queries
    are counted (``costs.eval_queries``). ``n_label_slots`` defaults to ``n_classes``: the slots
    beyond are zero in the data and stay zero.

    ``standardise`` (on by default) centres and scales each physical output on the training
    measurements seen so far (:class:`OutputStandardiser`, checkpointed) before ``W_k`` sees it,
    so the units of a measurement do not matter. Measured without it (synthetic vowels, 2 layers,
    200 epochs, seeds 0-2, chance 0.14): tiny outputs without skip fail, |Tx|² speckle ×10⁻⁶ at
    0.37-0.44 and tanh ×10⁻⁴ at 0.37-0.40, and a large common-mode offset fails with or without
    skip (speckle + 1000: 0.29-0.58 without, 0.13-0.27 with); large gains and small offsets
    mostly train raw (speckle ×10⁴: 0.94-0.98; tanh + 10 without skip: 0.71-0.85). With it,
    all of these reach 0.94-1.00. Turn it off for layers that are standardised already (the
    training procedures' ``LabLayer`` does it on random probes).
    """

    def __init__(
        self,
        layers: Sequence,
        n_classes: int,
        *,
        skip: bool = True,
        alpha: float = 4.0,
        lr: float = 5e-4,
        inner_steps: int = 10,
        batch_size: int | None = None,
        goodness: str = "cosine",
        n_label_slots: int | None = None,
        out_width: int | None = None,
        standardise: bool = True,
        seed: int = 0,
        divergence_bound: float = 1e6,
    ) -> None:
        super().__init__(seed=seed, divergence_bound=divergence_bound)
        if not layers:
            raise ValueError("PhyLL needs at least one physical layer")
        if goodness not in GOODNESS_KINDS:
            raise ValueError(f"goodness={goodness!r}; choose one of {GOODNESS_KINDS}")
        self.layers = physical_layers(layers)
        self.n_inputs = int(self.layers[0].n_in)
        self.n_classes = positive_int(n_classes, "n_classes")
        self.n_label_slots = positive_int(n_label_slots or n_classes, "n_label_slots")
        if not 2 <= self.n_classes <= self.n_label_slots < self.n_inputs:
            raise ValueError(
                f"need 2 <= n_classes ({self.n_classes}) <= n_label_slots ({self.n_label_slots}) "
                f"< the first layer's n_in ({self.n_inputs})"
            )
        self.skip = skip
        self.alpha = float(alpha)
        self.lr = float(lr)
        self.inner_steps = positive_int(inner_steps, "inner_steps")
        self.batch_size = self._batch_size(batch_size)
        self.goodness = goodness

        self.digital = nn.ModuleList()
        for k, layer in enumerate(self.layers):
            width_in = int(layer.n_out) + (int(layer.n_in) if skip else 0)
            if k + 1 < len(self.layers):
                width_out = int(self.layers[k + 1].n_in)
            else:
                width_out = positive_int(out_width or layer.n_in, "out_width")
            if width_out == 1 and goodness == "cosine":
                source = f"layer {k + 1}'s n_in" if k + 1 < len(self.layers) else "out_width"
                raise ValueError(
                    f"W_{k} would have one output ({source} is 1): the cosine goodness "
                    "cos(|h|, p) of a single output is constant, so that layer cannot learn; "
                    "use goodness='sumsq' or a width of 2 or more"
                )
            self.digital.append(seeded_linear(width_in, width_out, self.generator))
        self.prototypes = nn.ParameterList(
            nn.Parameter(random_prototype(linear.out_features, self.generator), requires_grad=False)
            for linear in self.digital
            if goodness == "cosine"
        )
        self.optimizers = [
            torch.optim.Adam(linear.parameters(), lr=self.lr) for linear in self.digital
        ]
        self.standardise = bool(standardise)
        self.standardisers = nn.ModuleList(
            OutputStandardiser(int(layer.n_out)) for layer in self.layers if self.standardise
        )

    @property
    def digital_widths(self) -> list[tuple[int, int]]:
        """``(in, out)`` of each trainable map W_k."""
        return [(linear.in_features, linear.out_features) for linear in self.digital]

    @property
    def local_maps(self) -> nn.ModuleList:
        return self.digital

    def _layer_input(self, k: int, h: Tensor, *, evaluation: bool = False) -> Tensor:
        """Measure P_k(h) and, with skip, append the layer input: the input of W_k."""
        measured = self._measure(self.layers[k], h, evaluation=evaluation)
        if self.standardise:
            standardiser = self.standardisers[k]
            if not evaluation:
                standardiser.update(measured)
            measured = standardiser(measured)
            # subtract and divide per element; in training also the statistics' update
            self._costs.digital_flops += measured.numel() * (2 if evaluation else 6)
        return torch.cat([measured, h], dim=1) if self.skip else measured

    def _activity(self, k: int, z: Tensor) -> Tensor:
        return self.digital[k](z)

    def _goodness(self, k: int, h: Tensor) -> Tensor:
        if self.goodness == "cosine":
            return cosine_goodness(h, self.prototypes[k])
        return sum_of_squares_goodness(h)

    def _local_loss(self, good_positive: Tensor, good_negative: Tensor) -> Tensor:
        return F.softplus(-self.alpha * (good_positive - good_negative)).mean()

    def _stateful(self) -> dict:
        parts = {"digital": self.digital, "prototypes": self.prototypes}
        if self.standardise:
            parts["standardisers"] = self.standardisers
        parts.update({f"optimizer.{k}": opt for k, opt in enumerate(self.optimizers)})
        return parts

    def _physical_layers(self) -> list:
        return self.layers

    def _comparable_config(self, saved: dict) -> dict:
        saved = super()._comparable_config(saved)
        # checkpoints from before the outputs' standardisation trained without it
        saved.setdefault("standardise", False)
        return saved

    def _config(self) -> dict:
        return {
            **super()._config(),
            "layers": [repr(layer) for layer in self.layers],
            "n_classes": self.n_classes,
            "n_label_slots": self.n_label_slots,
            "digital_widths": self.digital_widths,
            "skip": self.skip,
            "alpha": self.alpha,
            "lr": self.lr,
            "inner_steps": self.inner_steps,
            "batch_size": self.batch_size,
            "goodness": self.goodness,
            "standardise": self.standardise,
        }
