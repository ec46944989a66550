"""Actor/model ("competing") networks: project target images through an unknown medium.

Rahmani et al. (Nat. Mach. Intell. 2020). The camera measures intensity only, so no
gradient flows through the fibre. A *model network* learns SLM pattern → camera image
from measured pairs (here :class:`~labpnn.control.speckle_model.SpeckleModel`); an *actor
network* maps a target image to an SLM pattern and is trained through the frozen model
to maximise the Pearson fidelity of the predicted image. The outer loop
(:class:`~labpnn.control.loop.ControlLoop`) then measures the actor's patterns on the
hardware, appends them to the model's data and retrains both.

The actor is an MLP whose last layer gives a 2-D vector per macropixel; its angle is the
phase. An angle has no wrap-around edge, so the actor can move a phase continuously
through 2π, which a bounded phase output (e.g. ``2π·sigmoid``) cannot.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from labpnn.control.loop import ControlLoop, Progress, cosine_lr
from labpnn.control.metrics import torch_pearson
from labpnn.control.speckle_model import SpeckleModel

__all__ = ["ActorNetwork", "ActorControlLoop", "ActorModelControl", "train_through"]


class ActorNetwork(nn.Module):
    """Target image ``[B, P]`` → SLM phases ``[B, N]`` (rad)."""

    def __init__(self, n_pixels: int, n_macropixels: int, hidden: int, generator: torch.Generator):
        super().__init__()
        self.n_macropixels = n_macropixels
        self.net = nn.Sequential(
            nn.Linear(n_pixels, hidden),
            nn.GELU(),
            nn.Linear(hidden, hidden),
            nn.GELU(),
            nn.Linear(hidden, 2 * n_macropixels),
        )
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                bound = 1.0 / layer.in_features**0.5
                nn.init.uniform_(layer.weight, -bound, bound, generator=generator)
                nn.init.uniform_(layer.bias, -bound, bound, generator=generator)

    def forward(self, targets: torch.Tensor) -> torch.Tensor:
        out = self.net(targets).view(-1, 2, self.n_macropixels)
        return torch.atan2(out[:, 1], out[:, 0])


def train_through(
    actor: nn.Module,
    forward_model: nn.Module,
    targets: np.ndarray,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    lr: float,
    batch: int,
    generator: torch.Generator,
    progress: Progress | None = None,
    extra_loss: Any = None,
) -> float:
    """Train ``actor`` to maximise the Pearson fidelity of ``forward_model(actor(t))``.

    The forward model is frozen (its parameters get no updates and no gradients are kept);
    the learning rate follows a cosine from ``lr`` over the ``epochs``. Returns the mean
    predicted fidelity of the last epoch.
    """
    data = torch.as_tensor(np.asarray(targets), dtype=torch.float32)
    frozen = [p.requires_grad for p in forward_model.parameters()]
    for p in forward_model.parameters():
        p.requires_grad_(False)
    last = 0.0
    try:
        for epoch in range(epochs):
            for group in optimizer.param_groups:
                group["lr"] = cosine_lr(lr, epoch, epochs)
            order = torch.randperm(len(data), generator=generator)
            total = 0.0
            for start in range(0, len(order), batch):
                t = data[order[start : start + batch]]
                phases = actor(t)
                fidelity = torch_pearson(forward_model(phases), t)
                loss = (1.0 - fidelity).mean()
                if extra_loss is not None:
                    loss = loss + extra_loss(phases, t)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(fidelity.detach().sum())
            last = total / len(data)
            if progress:
                progress("actor: training", epoch + 1, epochs)
    finally:
        for p, flag in zip(forward_model.parameters(), frozen, strict=True):
            p.requires_grad_(flag)
    return last


class ActorControlLoop(ControlLoop):
    """The actor half shared by the actor/model and VAE controllers.

    Both train the same :class:`ActorNetwork` through their forward model ``self.model``;
    keeping it in one place keeps their actors (and their RNG draws) the same.
    Subclasses call :meth:`build_actor` at the end of :meth:`build`, after their model,
    so the generator's draws come in the same order.
    """

    state_name = "model"  # checkpoint prefix of ``self.model`` and ``self.model_optimizer``

    def build_actor(self) -> None:
        """Create ``self.actor`` and its optimiser (seeded from ``self.generator``)."""
        cfg = self.config
        self.actor = ActorNetwork(
            self.n_pixels, self.n_macropixels, cfg.actor_hidden, self.generator
        )
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)

    def stateful(self) -> dict[str, Any]:
        return {
            self.state_name: self.model,
            f"{self.state_name}_optimizer": self.model_optimizer,
            "actor": self.actor,
            "actor_optimizer": self.actor_optimizer,
        }

    def train_actor(self, first: bool, progress: Progress | None = None) -> dict[str, float]:
        cfg = self.config
        predicted = train_through(
            self.actor,
            self.model,
            self.train_targets,
            self.actor_optimizer,
            cfg.actor_epochs if first else cfg.actor_refit_epochs,
            cfg.actor_lr,
            cfg.batch,
            self.generator,
            progress,
        )
        return {"train_fidelity_predicted": predicted}

    def patterns(self, targets: np.ndarray) -> np.ndarray:
        flat = np.asarray(targets, dtype=np.float32).reshape(len(targets), -1)
        flat = flat / np.maximum(flat.max(axis=1, keepdims=True), 1e-12)
        with torch.no_grad():
            phases = self.actor(torch.as_tensor(flat)).numpy().astype(np.float64)
        return np.mod(phases, 2 * np.pi)

    def predict(self, phases: np.ndarray) -> np.ndarray:
        return self.model.predict(phases)


class ActorModelControl(ActorControlLoop):
    """The actor/model controller; see the module docstring and :class:`ControlLoop`."""

    method = "actor-model"
    stages = (
        "model: spectral start", "model: phase retrieval", "model: fine-tuning", "actor: training",
    )  # fmt: skip

    def build(self) -> None:
        self.model = SpeckleModel(self.n_macropixels, self.n_pixels)
        self.model_optimizer = self.model.make_optimizer()
        self.build_actor()

    def fit_model(self, first: bool, progress: Progress | None = None) -> dict[str, float]:
        cfg = self.config
        return self.model.fit(
            self.codes,
            self.images,
            iterations=cfg.model_iterations if first else cfg.model_refit_iterations,
            epochs=cfg.model_epochs,
            generator=self.generator,
            optimizer=self.model_optimizer,
            progress=progress,
        )
