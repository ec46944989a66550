"""Control: find the SLM pattern that makes the medium project a wanted camera image.

* :mod:`.metrics` — fidelity (2-D Pearson), MSE, PSNR;
* :mod:`.targets` — held-out digits, shapes, a user's PNG files;
* :mod:`.phase_retrieval` — Gerchberg–Saxton through a known TM (the full-TM baseline);
* :mod:`.speckle_model` — the model network learned from intensity-only pairs;
* :mod:`.loop` — the outer loop: measure, append, retrain, with a query budget;
* :mod:`.actor_model` — actor/model networks (Rahmani et al. 2020);
* :mod:`.vae` — the variational framework (Rahmani, Psaltis, Moser 2021).

The library never touches a bench: it takes a ``measure`` callable from phases to images.
"""

from labpnn.control.actor_model import ActorModelControl, ActorNetwork
from labpnn.control.loop import ControlLoop, LoopConfig, QueryBudgetExceeded
from labpnn.control.metrics import (
    TargetError,
    check_targets,
    mse,
    pearson_fidelity,
    psnr,
    summarize,
)
from labpnn.control.phase_retrieval import (
    ProjectionOptics,
    gerchberg_saxton,
    project_targets,
    refine_phases,
)
from labpnn.control.speckle_model import SpeckleModel
from labpnn.control.targets import (
    TargetResampled,
    digit_targets,
    fit_to_shape,
    load_targets,
    png_targets,
    random_shape_targets,
    shape_targets,
)
from labpnn.control.vae import VAEControl, VariationalForwardModel

__all__ = [
    "ActorModelControl",
    "ActorNetwork",
    "ControlLoop",
    "LoopConfig",
    "ProjectionOptics",
    "QueryBudgetExceeded",
    "SpeckleModel",
    "TargetError",
    "TargetResampled",
    "check_targets",
    "digit_targets",
    "fit_to_shape",
    "gerchberg_saxton",
    "load_targets",
    "mse",
    "pearson_fidelity",
    "png_targets",
    "project_targets",
    "psnr",
    "random_shape_targets",
    "refine_phases",
    "shape_targets",
    "summarize",
    "VAEControl",
    "VariationalForwardModel",
]
