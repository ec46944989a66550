"""``train-phyll``: physical local learning (model-free forward-forward) on any bench.

Each layer is the bench (measured, no model of it) followed by a trainable digital map,
``h_{k+1} = W_k [P(h_k), h_k]`` with the skip (acoustic, microwave) or ``W_k P(h_k)`` without
(optical). Labels are embedded in the input; prediction tries every label, so scoring one sample
costs ``n_classes`` queries per physical layer. See :class:`labpnn.learning.PhyLL`.

Example::

    labpnn run train-phyll --station acoustic-sim --set epochs=200 --set seed=3
    labpnn run train-phyll --station optical-sim --set dataset=digits
"""

from __future__ import annotations

from typing import Any, ClassVar

from labpnn.learning import PhyLL, Trainer
from labpnn.procedure import FloatParameter, IntegerParameter, ListParameter
from labpnn.procedures.training.common import PhysicalTrainingProcedure

__all__ = ["TrainPhyLL"]


class TrainPhyLL(PhysicalTrainingProcedure):
    """Train PhyLL's digital maps on the bench's physical layers, layer-locally."""

    name: ClassVar[str] = "train-phyll"
    default_station: ClassVar[str] = "acoustic-sim"
    family: ClassVar[str] = "phyll"

    alpha = FloatParameter("Contrastive scale α of the loss", default=4.0, minimum=0.0, maximum=1e3)
    inner_steps = IntegerParameter(
        "Adam steps per layer per batch (0 = the bench's default)",
        default=0,
        minimum=0,
        maximum=10_000,
    )
    skip = ListParameter(
        "Skip concatenation [P(h), h] (auto = on for acoustic and microwave, off for optical)",
        choices=["auto", "on", "off"],
        default="auto",
    )
    goodness = ListParameter(
        "Goodness (cosine to a random prototype, or the sum of squares)",
        choices=["cosine", "sumsq"],
        default="cosine",
    )

    def default(self, key: str) -> Any:
        if key == "skip":
            return "on" if self.bench_defaults.skip else "off"
        return super().default(key)

    def build(self, task: Any, resume_meta: dict | None) -> Trainer:
        trainer = PhyLL(
            self.physical_stack(),
            n_classes=task.n_classes,
            skip=self.setting("skip") == "on",
            alpha=float(self.alpha),
            lr=float(self.setting("lr")),
            inner_steps=int(self.setting("inner_steps")),
            batch_size=self.batch,
            goodness=self.goodness,
            n_label_slots=task.n_label_slots,
            # the bench layer standardises on random probes (LabLayer), or deliberately not
            standardise=False,
            seed=int(self.seed),
            divergence_bound=float(self.divergence_bound),
        )
        if resume_meta is None:
            self.standardise_layer(trainer)
        return trainer

    def queries_per_epoch(self, n_train: int, n_classes: int) -> int:
        return 2 * n_train * self.n_layers  # positives and negatives through every layer

    def queries_per_evaluation(self, n_rows: int, n_classes: int) -> int:
        return n_rows * n_classes * self.n_layers  # every candidate label through every layer
