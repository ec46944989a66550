"""``train-ff``: Hinton's forward-forward on a digital MLP, the all-digital reference for PhyLL.

No bench is queried: the run takes a station only so that it is recorded, locked and logged like
every other run (any station will do; by default the simulated acoustic one). It logs the same
columns as the physical procedures, so PhyLL and its digital reference plot side by side.

Example::

    labpnn run train-ff --set dataset=digits --set epochs=60
"""

from __future__ import annotations

from typing import Any, ClassVar

from labpnn.errors import BadInput
from labpnn.learning import ForwardForward, Trainer
from labpnn.procedure import FloatParameter, IntegerParameter, Parameter
from labpnn.procedures.training.common import TrainingProcedure

__all__ = ["TrainFF"]


def parse_widths(text: str, name: str = "hidden") -> tuple[int, ...]:
    """``"500,500"`` -> ``(500, 500)``; a BadInput naming parameter ``name`` otherwise."""
    try:
        widths = tuple(int(part) for part in str(text).replace(" ", "").split(",") if part)
    except ValueError:
        widths = ()
    if not widths or min(widths) < 1:
        raise BadInput(f"{name}={text!r}: give layer widths separated by commas, e.g. 500,500")
    return widths


class TrainFF(TrainingProcedure):
    """Forward-forward (sum-of-squares goodness, threshold, length normalisation) on a ReLU MLP."""

    name: ClassVar[str] = "train-ff"
    bench_kinds: ClassVar[tuple[str, ...]] = ()
    digital_only: ClassVar[bool] = True
    default_station: ClassVar[str] = "acoustic-sim"  # named in its file; none of it is used
    family: ClassVar[str] = "ff"
    watchdog_s: ClassVar[float] = 900.0

    hidden = Parameter("Hidden layer widths, comma separated", default="500,500")
    threshold = FloatParameter("Goodness threshold θ", default=2.0, minimum=0.0, maximum=1e6)
    inner_steps = IntegerParameter(
        "Adam steps per layer per batch", default=1, minimum=1, maximum=10_000
    )

    def check_station_config(self, config: Any) -> None:
        """``hidden`` too: refused by dry runs, the queue and schedules, not at the start."""
        super().check_station_config(config)
        parse_widths(self.hidden)

    def build(self, task: Any, resume_meta: dict | None) -> Trainer:
        return ForwardForward(
            task.n_inputs,
            task.n_classes,
            hidden=parse_widths(self.hidden),
            threshold=float(self.threshold),
            lr=float(self.setting("lr")),
            inner_steps=int(self.inner_steps),
            batch_size=self.batch,
            n_label_slots=task.n_label_slots,
            seed=int(self.seed),
            divergence_bound=float(self.divergence_bound),
        )
