"""``train-insilico``: train on the digital twin alone, then deploy to the bench (the baseline).

The same network, twin and cost ledger as ``train-pat``; training queries no hardware, and every
evaluation runs the network on the bench (deployed). Each evaluation also logs
``twin_test_accuracy``, what the twin believes, so the gap between model and reality shows.

Example::

    labpnn run train-insilico --station acoustic-sim --set epochs=100
"""

from __future__ import annotations

from typing import Any, ClassVar

from labpnn.learning import InSilicoTrainer, Trainer
from labpnn.procedures.training.pat import TwinTrainingProcedure

__all__ = ["TrainInSilico"]


class TrainInSilico(TwinTrainingProcedure):
    """Train the digital maps through the twin; score them on the bench."""

    name: ClassVar[str] = "train-insilico"
    default_station: ClassVar[str] = "acoustic-sim"
    trainer_class: ClassVar[type] = InSilicoTrainer
    extra_columns: ClassVar[tuple[str, ...]] = ("twin_test_accuracy",)

    def evaluation_extras(self, trainer: Trainer, task: Any) -> dict[str, float]:
        predicted = trainer.twin_logits(task.x_test).argmax(dim=1)
        return {"twin_test_accuracy": (predicted == task.y_test).float().mean().item()}

    def queries_per_epoch(self, n_train: int, n_classes: int) -> int:
        return 0
