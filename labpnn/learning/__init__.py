"""Training algorithms for physical neural networks, all behind one :class:`Trainer` interface.

Learning code sees physical layers only through :class:`labpnn.physical.PhysicalLayer`, so every
trainer runs unchanged on a real bench, a simulated one, or a plain torch function.

``TRAINERS`` maps short names to trainer classes for procedures and the CLI; add a plug-in with
:func:`register_trainer`.
"""

from labpnn.learning.costs import Costs
from labpnn.learning.forward_forward import ForwardForward
from labpnn.learning.insilico import InSilicoTrainer
from labpnn.learning.pat import PhysicsAwareStep, PhysicsAwareTrainer
from labpnn.learning.phyll import PhyLL
from labpnn.learning.spsa import SPSATrainer
from labpnn.learning.tm_twin import TransmissionMatrixTwin, fit_output_map
from labpnn.learning.trainer import Trainer, TrainingDiverged
from labpnn.learning.twin import DigitalTwin, fit_twin

__all__ = [
    "Costs",
    "DigitalTwin",
    "ForwardForward",
    "InSilicoTrainer",
    "PhyLL",
    "PhysicsAwareStep",
    "PhysicsAwareTrainer",
    "SPSATrainer",
    "TRAINERS",
    "Trainer",
    "TrainingDiverged",
    "TransmissionMatrixTwin",
    "fit_output_map",
    "fit_twin",
    "register_trainer",
]

TRAINERS: dict[str, type[Trainer]] = {
    "phyll": PhyLL,
    "ff": ForwardForward,
    "pat": PhysicsAwareTrainer,
    "insilico": InSilicoTrainer,
    "spsa": SPSATrainer,
}


def register_trainer(name: str, cls: type[Trainer]) -> None:
    """Make a trainer class available as ``TRAINERS[name]`` (it must subclass :class:`Trainer`)."""
    if not (isinstance(cls, type) and issubclass(cls, Trainer)):
        raise TypeError(f"{cls!r} is not a Trainer subclass; implement labpnn.learning.Trainer")
    if name in TRAINERS and TRAINERS[name] is not cls:
        raise ValueError(f"trainer name {name!r} is already taken by {TRAINERS[name].__name__}")
    TRAINERS[name] = cls
