"""The outer loop shared by the learning controllers: measure, append, retrain, repeat.

Rahmani et al. (2020) close the loop between a learned forward model and the hardware:
the actor's patterns are sent to the real system, the measured pairs join the model's
data, the model is retrained and the actor retrained through it. Each round makes the
model accurate exactly where the actor works, and lets it follow a drifting medium.

:class:`ControlLoop` holds what every controller shares: the measured pairs (as SLM grey
levels, 1 byte per macropixel, and camera frames), the hardware-query count and budget,
an optional memory window (on a drifting medium old pairs describe a medium that is gone),
the random generators, the history, and a pickle-free checkpoint of all of it.
Subclasses (:mod:`.actor_model`, :mod:`.vae`) provide the networks.

``measure`` is any callable from phases ``[B, N]`` (rad) to camera images ``[B, P]``: a
bench, a simulator, or a function in a test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch

from labpnn.control.metrics import pearson_fidelity, summarize
from labpnn.control.speckle_model import code_phases, phase_codes

__all__ = [
    "LoopConfig", "ControlLoop", "QueryBudgetExceeded", "Measure", "Progress", "round_progress",
]  # fmt: skip

Measure = Callable[[np.ndarray], np.ndarray]
Progress = Callable[[str, float, float], None]


def round_progress(stages: tuple[str, ...], report: Callable[[str, float], None]) -> Progress:
    """A :data:`Progress` that folds each stage's own ``i / n`` into one fraction of the round.

    The model fit and the actor training each count from 0 to their own total, so a bar fed
    their raw fractions ran from 0 to full and back once per stage. Here the ``stages`` (in
    the order one round reports them) share the round equally; ``report(stage, fraction)``
    gets a fraction in 0..1 that never goes down. A stage a round skips (the spectral start
    after the first fit) moves the bar on; one not listed holds it where it is.
    """
    reached = 0.0

    def progress(stage: str, i: float, n: float) -> None:
        nonlocal reached
        if stage in stages:
            done = stages.index(stage) + min(1.0, max(0.0, i / max(n, 1)))
            reached = max(reached, done / len(stages))
        report(stage, reached)

    return progress


class QueryBudgetExceeded(RuntimeError):
    """The next measurement would exceed the hardware-query budget."""


@dataclass
class LoopConfig:
    """Sizes and schedules of a control loop; the defaults suit 32×32 → 16×16."""

    n_probes: int = 6144  # random patterns measured first (≈ 6 per macropixel)
    patterns_per_iteration: int = 1000  # actor patterns measured and appended per round
    probes_per_iteration: int = 0  # fresh random probes per round (keeps a drifting model whole)
    model_iterations: int = 60  # phase-retrieval iterations, first fit
    model_refit_iterations: int = 15  # ... warm-started refits
    model_epochs: int = 3  # Adam fine-tuning epochs of the model per fit
    actor_epochs: int = 25  # actor epochs, first training
    actor_refit_epochs: int = 8  # ... per later round
    actor_hidden: int = 512
    actor_lr: float = 1e-3
    batch: int = 64
    max_queries: int = 0  # hardware-query budget; 0 = unlimited
    memory: int = 0  # measured pairs kept for the model, newest first; 0 = all
    saturation: float = float("inf")  # frames reaching this value stay out of the model's data
    seed: int = 0

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LoopConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


class ControlLoop:
    """Measured pairs, query budget, generators, history and checkpoints (see module doc)."""

    method = "loop"
    # The progress stages of one round, in order (see :func:`round_progress`).
    stages: tuple[str, ...] = ()

    def __init__(
        self,
        n_macropixels: int,
        target_shape: tuple[int, int],
        train_targets: np.ndarray,
        config: LoopConfig | None = None,
    ):
        self.config = config or LoopConfig()
        self.n_macropixels = int(n_macropixels)
        self.target_shape = (int(target_shape[0]), int(target_shape[1]))
        self.n_pixels = self.target_shape[0] * self.target_shape[1]
        train = np.asarray(train_targets, dtype=np.float32).reshape(len(train_targets), -1)
        if train.shape[1] != self.n_pixels:
            raise ValueError(
                f"training targets have {train.shape[1]} pixels, the camera region "
                f"{self.target_shape} has {self.n_pixels}"
            )
        self.train_targets = train / train.max(axis=1, keepdims=True)
        self.codes = np.zeros((0, self.n_macropixels), dtype=np.uint8)
        self.images = np.zeros((0, self.n_pixels), dtype=np.float32)
        self.queries = 0
        self.left_out = 0  # measured frames kept out of the model's data (NaN or saturated)
        self.iteration = 0  # completed outer rounds; 0 = after the probe round
        self.started = False
        self.history: list[dict[str, float]] = []
        self.rng = np.random.default_rng([self.config.seed, 7])
        self.generator = torch.Generator().manual_seed(self.config.seed)
        self.build()

    # -- what subclasses provide -------------------------------------------------------
    def build(self) -> None:
        """Create the networks and optimisers (seeded from ``self.generator``)."""
        raise NotImplementedError

    def stateful(self) -> dict[str, Any]:
        """Name → module or optimiser, for checkpoints."""
        raise NotImplementedError

    def fit_model(self, first: bool, progress: Progress | None = None) -> dict[str, float]:
        raise NotImplementedError

    def train_actor(self, first: bool, progress: Progress | None = None) -> dict[str, float]:
        raise NotImplementedError

    def patterns(self, targets: np.ndarray) -> np.ndarray:
        """SLM phases ``[B, N]`` (rad) the actor proposes for flat targets ``[B, P]``."""
        raise NotImplementedError

    def predict(self, phases: np.ndarray) -> np.ndarray:
        """The forward model's image ``[B, P]`` for phases ``[B, N]``."""
        raise NotImplementedError

    # -- the loop ------------------------------------------------------------------------
    @property
    def queries_left(self) -> int | None:
        cap = self.config.max_queries
        return None if cap <= 0 else max(0, cap - self.queries)

    def _measure(self, measure: Measure, phases: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        left = self.queries_left
        if left is not None and len(phases) > left:
            raise QueryBudgetExceeded(
                f"{len(phases)} more patterns would exceed the budget of "
                f"{self.config.max_queries} hardware queries ({self.queries} used)"
            )
        codes = phase_codes(phases)
        images = np.asarray(measure(code_phases(codes)), dtype=np.float32)
        images = images.reshape(len(codes), -1)
        if images.shape[1] != self.n_pixels:
            raise ValueError(
                f"the bench returned {images.shape[1]} pixels per frame; the targets have "
                f"{self.n_pixels}. The camera region must match the target shape"
            )
        self.queries += len(codes)
        return codes, images

    def _append(self, codes: np.ndarray, images: np.ndarray) -> None:
        # A bad frame (NaN) or a clipped one (saturated pixels lie about the intensity)
        # never enters the model's data.
        good = np.all(np.isfinite(images), axis=1) & (images.max(axis=1) < self.config.saturation)
        self.left_out += int((~good).sum())
        self.codes = np.concatenate([self.codes, codes[good]])
        self.images = np.concatenate([self.images, images[good]])
        keep = self.config.memory
        if keep > 0 and len(self.codes) > keep:  # a drifting medium: forget the oldest pairs
            self.codes, self.images = self.codes[-keep:], self.images[-keep:]

    def start(self, measure: Measure, progress: Progress | None = None) -> dict[str, float]:
        """Round 0: random probes → measure → first model fit → first actor training."""
        phases = self.rng.uniform(0.0, 2 * np.pi, (self.config.n_probes, self.n_macropixels))
        codes, images = self._measure(measure, phases)
        self._append(codes, images)
        info = self.fit_model(first=True, progress=progress)
        info.update(self.train_actor(first=True, progress=progress))
        self.started = True
        return info

    def step(
        self, measure: Measure, progress: Progress | None = None, reserve: int = 0
    ) -> dict[str, float]:
        """One outer round: the actor's patterns → measure → append → refit → retrain.

        ``reserve`` queries of the budget are left unspent (for the next evaluation).
        """
        n = min(self.config.patterns_per_iteration, len(self.train_targets))
        left = self.queries_left
        if left is not None:
            n = max(0, min(n, left - reserve))
        probes = self.config.probes_per_iteration
        if left is not None:
            probes = max(0, min(probes, left - reserve - n))
        info: dict[str, float] = {"appended": float(n + probes)}
        if n > 0:
            pick = self.rng.choice(len(self.train_targets), n, replace=False)
            codes, images = self._measure(measure, self.patterns(self.train_targets[pick]))
            self._append(codes, images)
            info["train_fidelity_measured"] = float(
                np.mean(_safe_fidelity(images, self.train_targets[pick]))
            )
        if probes > 0:
            # Random probes excite every direction of the medium; the actor's patterns
            # span only the few it needs, which is not enough to follow a drifting one.
            phases = self.rng.uniform(0.0, 2 * np.pi, (probes, self.n_macropixels))
            self._append(*self._measure(measure, phases))
        info.update(self.fit_model(first=False, progress=progress))
        info.update(self.train_actor(first=False, progress=progress))
        self.iteration += 1
        return info

    def evaluate(
        self, measure: Measure, targets: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Project held-out targets: ``(phases, measured images, fidelity per target)``.

        The pairs are *not* added to the model's data, so the held-out targets stay unseen.
        """
        flat = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)
        codes, images = self._measure(measure, self.patterns(flat))
        return code_phases(codes), images, _safe_fidelity(images, flat)

    def record(self, fidelity: np.ndarray, **extra: float) -> dict[str, float]:
        row = {"iteration": float(self.iteration), "queries": float(self.queries)}
        row.update(summarize(fidelity))
        row.update(extra)
        self.history.append(row)
        return row

    # -- checkpoints ---------------------------------------------------------------------
    def checkpoint_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Every array (pairs, weights, optimiser moments, generator) and JSON metadata."""
        from labpnn.learning.checkpoint import split_state

        arrays: dict[str, np.ndarray] = {
            "pairs.codes": self.codes.copy(),
            "pairs.images": self.images.copy(),
            "rng.torch": self.generator.get_state().numpy().copy(),
        }
        skeletons = {}
        for name, obj in self.stateful().items():
            part, skeletons[name] = split_state(obj.state_dict(), name)
            arrays.update(part)
        meta = {
            "method": self.method,
            "config": asdict(self.config),
            "queries": self.queries,
            "left_out": self.left_out,
            "iteration": self.iteration,
            "started": self.started,
            "history": self.history,
            "rng_numpy": json.loads(json.dumps(self.rng.bit_generator.state)),
            "skeletons": skeletons,
        }
        return arrays, meta

    def restore_state(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        from labpnn.learning.checkpoint import join_state

        if meta.get("method") != self.method:
            raise ValueError(
                f"this checkpoint was written by the '{meta.get('method')}' controller, "
                f"not '{self.method}'"
            )
        self.codes = np.array(arrays["pairs.codes"], dtype=np.uint8)
        self.images = np.array(arrays["pairs.images"], dtype=np.float32)
        self.generator.set_state(torch.from_numpy(np.array(arrays["rng.torch"], dtype=np.uint8)))
        for name, obj in self.stateful().items():
            saved = join_state(meta["skeletons"][name], arrays)
            if isinstance(obj, torch.optim.Optimizer):
                # JSON turned the optimiser's integer parameter ids into strings; an
                # optimiser silently ignores state under keys it does not know.
                saved["state"] = {int(key): value for key, value in saved["state"].items()}
            obj.load_state_dict(saved)
        self.queries = int(meta["queries"])
        self.left_out = int(meta.get("left_out", 0))
        self.iteration = int(meta["iteration"])
        self.started = bool(meta["started"])
        self.history = list(meta["history"])
        self.rng.bit_generator.state = meta["rng_numpy"]


def _safe_fidelity(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Fidelity per frame; a frame with NaNs (a bad camera frame) scores 0."""
    images = np.nan_to_num(np.asarray(images, dtype=np.float64), nan=0.0, posinf=0.0)
    return pearson_fidelity(images, np.asarray(targets, dtype=np.float64), flat=True)


def cosine_lr(base: float, epoch: int, epochs: int, floor: float = 0.05) -> float:
    """Learning rate for ``epoch`` of ``epochs``: cosine from ``base`` to ``floor·base``."""
    t = epoch / max(1, epochs - 1) if epochs > 1 else 1.0
    return base * (floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * t)))
