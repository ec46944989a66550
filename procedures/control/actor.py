"""control-actor: project target images with actor/model networks, intensity-only camera.

Rahmani et al. (2020); the library is :mod:`labpnn.control.actor_model`. Round 0 measures
``n_probes`` random SLM patterns and fits the model network, then trains the actor through
it. Each later round evaluates the actor on the held-out targets, measures its patterns for
``patterns_per_iteration`` training images, appends those pairs, refits the model and
retrains the actor. No TM and no reference-arm phase is used, only camera intensities.

The actor trains on the 1597 training digits plus as many random drawings (spots, lines,
boxes, letters; ``train_on``): trained on digits alone it projects held-out digits as well
but simple shapes markedly worse (Pearson 0.68–0.94 instead of 0.96–0.99 on our bench).
Saturated frames stay out of the model's data. On a drifting medium, set ``memory`` (keep
only the newest pairs) and ``probes_per_iteration`` (fresh random probes each round).

The state after every round (networks, optimisers, generators, measured pairs and the
simulated world) is checkpointed, so ``labpnn resume RUN.h5`` continues a crashed run and
ends with the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, ClassVar

import numpy as np
import torch

from labpnn.control.actor_model import ActorModelControl
from labpnn.control.loop import ControlLoop, LoopConfig, QueryBudgetExceeded
from labpnn.control.targets import digit_targets, random_shape_targets
from labpnn.errors import BadInput
from labpnn.procedure import FloatParameter, IntegerParameter, ListParameter
from labpnn.procedures.control.common import BASELINE_PATTERNS, ControlProcedure, _station_layout

CHECKPOINT_FORMAT = "labpnn-control-loop/1"
TIMING_DOCS: dict[str, tuple[str, str]] = {
    "iteration": ("count", "round: 0 = probes and first fits, then one per outer iteration"),
    "digital_s": ("s", "wall time of the round not spent measuring (fitting and training)"),
    "digital_cpu_s": ("s", "the same in process CPU time, all threads"),
    "hardware_s": ("s", "bench time of the round's measurements, on the station clock"),
    "measure_wall_s": ("s", "wall time inside the bench calls"),
}


class LearnedControlProcedure(ControlProcedure):
    """The outer loop of a learned controller, on the bench, with checkpoints."""

    controller: ClassVar[type[ControlLoop]] = ControlLoop

    n_iterations = IntegerParameter(
        "Outer iterations after the probe round", default=3, minimum=0, maximum=1000
    )
    n_probes = IntegerParameter(
        "Random probe patterns in round 0", default=6144, minimum=1, maximum=10**7
    )
    patterns_per_iteration = IntegerParameter(
        "Actor patterns measured per iteration", default=1000, minimum=0, maximum=10**6
    )
    probes_per_iteration = IntegerParameter(
        "Fresh random probes per iteration (for a drifting medium)",
        default=0, minimum=0, maximum=10**6,
    )  # fmt: skip
    model_iterations = IntegerParameter(
        "Model phase-retrieval iterations (first fit)", default=60, minimum=0, maximum=10000
    )
    model_epochs = IntegerParameter(
        "Model fine-tuning epochs per fit", default=3, minimum=0, maximum=10000
    )
    actor_epochs = IntegerParameter(
        "Actor epochs, first training", default=25, minimum=1, maximum=100000
    )
    actor_refit_epochs = IntegerParameter(
        "Actor epochs per later iteration", default=8, minimum=0, maximum=100000
    )
    actor_hidden = IntegerParameter("Actor hidden width", default=512, minimum=8, maximum=65536)
    actor_lr = FloatParameter("Actor learning rate", default=1e-3, minimum=1e-7, maximum=1.0)
    max_queries = IntegerParameter(
        "Hardware-query budget (0 = none)", default=0, minimum=0, maximum=10**9
    )
    memory = IntegerParameter(
        "Measured pairs kept for the model (0 = all; on a drifting medium about 6 per macropixel)",
        default=0, minimum=0, maximum=10**8,
    )  # fmt: skip
    train_on = ListParameter(
        "Actor training images", choices=["digits", "digits+shapes"], default="digits+shapes"
    )
    n_train_targets = IntegerParameter(
        "Training digits for the actor (0 = all 1597)", default=0, minimum=0, maximum=1597
    )
    threads = IntegerParameter(
        "CPU threads for training (0 = torch's default)", default=2, minimum=0, maximum=256
    )

    def loop_config(self) -> LoopConfig:
        return LoopConfig(
            n_probes=int(self.n_probes),
            patterns_per_iteration=int(self.patterns_per_iteration),
            probes_per_iteration=int(self.probes_per_iteration),
            model_iterations=int(self.model_iterations),
            model_epochs=int(self.model_epochs),
            actor_epochs=int(self.actor_epochs),
            actor_refit_epochs=int(self.actor_refit_epochs),
            actor_hidden=int(self.actor_hidden),
            actor_lr=float(self.actor_lr),
            max_queries=int(self.max_queries),
            memory=int(self.memory),
            saturation=self.saturation_level(),
            seed=int(self.seed),
        )

    def saturation_level(self) -> float:
        """Image value of a clipped camera pixel: full scale (1.0) when the bench does not bin."""
        pool = _station_layout(self).get("pool", 1)
        return 1.0 if pool in (1, None, {"kernel": 1}) else float("inf")

    def make_controller(self, n_in: int, shape: tuple[int, int]) -> ControlLoop:
        return self.controller(n_in, shape, self.training_targets(shape), self.loop_config())

    def training_targets(self, shape: tuple[int, int]) -> np.ndarray:
        """Training digits (never the held-out ones), plus random drawings if asked."""
        train, _ = digit_targets(shape, "train", int(self.n_train_targets) or None)
        if self.train_on == "digits+shapes":
            train = np.concatenate([train, random_shape_targets(shape, len(train), int(self.seed))])
        return train

    def n_eval_targets(self) -> int:
        _macro, shape = self.layout_sizes()
        return len(self.load_targets(shape)[0])

    def estimate_queries(self) -> int:
        n_test = self.n_eval_targets()
        return int(
            self.n_probes
            + self.n_iterations * (self.patterns_per_iteration + self.probes_per_iteration)
            + (self.n_iterations + 1) * n_test
        )

    def check_station_config(self, config: Any) -> None:
        """The query budget against probes and targets: refused by dry runs and the queue too."""
        super().check_station_config(config)
        n_test = self.n_eval_targets()
        if self.max_queries and self.max_queries < self.n_probes + n_test:
            raise BadInput(
                f"{self.name}: max_queries={self.max_queries} cannot cover the {self.n_probes} "
                f"probes and one evaluation of {n_test} targets; raise it to at least "
                f"{self.n_probes + n_test} or lower n_probes"
            )

    # -- the run --------------------------------------------------------------------------
    def execute(self) -> None:
        if self.threads:
            torch.set_num_threads(int(self.threads))
        bench, measure = self.open_bench()
        shape = bench.pooled_shape
        targets, names = self.load_targets(shape)
        self.write_targets(targets, names)
        loop = self.make_controller(bench.n_in, shape)
        self.loop = loop
        total = int(self.n_iterations) + 2  # round 0, the iterations, the final evaluation
        if self.resume_state is not None:
            self._resume(loop, bench)
        else:
            self.set_progress(0, total, stage="probes")
            with self._timed(0):
                info = loop.start(measure, self._stage_progress(0, total))
            # the first probes are random patterns already measured: the chance level is free
            probes = loop.images[: min(len(targets), BASELINE_PATTERNS)]
            self.record_baseline(probes, targets.reshape(len(targets), -1), 0)
            self.log.info("round 0: %s", _fmt(info))
            self._checkpoint(loop, bench)
        flat = targets.reshape(len(targets), -1)
        while True:
            start = self.now()
            try:
                phases, images, fidelity = loop.evaluate(measure, flat)
            except QueryBudgetExceeded as exc:
                self.log.warning("stopping: %s", exc)
                break
            extra = self.evaluation_extras(loop)
            row = self.record_evaluation(loop.iteration, loop.queries, phases, images, targets,
                                         self.now() - start, **extra)  # fmt: skip
            loop.history.append(row)
            self.set_progress(loop.iteration + 1, total, fidelity=row["fidelity"])
            if loop.iteration >= self.n_iterations:
                break
            if loop.queries_left is not None and loop.queries_left < len(flat):
                self.log.warning("query budget spent: %d of %d", loop.queries, self.max_queries)
                break
            reserve = len(flat)  # keep enough budget for the next evaluation
            with self._timed(loop.iteration + 1):
                info = loop.step(measure, self._stage_progress(loop.iteration + 1, total), reserve)
            self.log.info("iteration %d: %s", loop.iteration, _fmt(info))
            self._checkpoint(loop, bench)
        self.set_progress(total, total, fidelity=loop.history[-1]["fidelity"])
        if loop.left_out:
            self.log.warning(
                "%d measured frames were saturated or bad and stayed out of the model's data",
                loop.left_out,
            )
        self.log.info(
            "%s: fidelity %.4f ± %.4f on %d targets after %d queries (%.1f s of hardware); "
            "random patterns score %.3f",
            self.name, loop.history[-1]["fidelity"], loop.history[-1]["fidelity_std"],
            len(flat), loop.queries, bench.hardware_s,
            (self.baseline or {}).get("baseline_fidelity", float("nan")),
        )  # fmt: skip

    def evaluation_extras(self, loop: ControlLoop) -> dict[str, float]:
        """Columns beside the fidelity: model accuracy, and the truth where simulated."""
        extras: dict[str, float] = {}
        truth = self.station.ground_truth
        model = getattr(loop, "model", None)
        if truth is not None and model is not None and hasattr(model, "weight"):
            true_tm = np.asarray(truth["tm_medium"])  # [pixels, macropixels]
            learned = model.weight.detach().numpy().astype(np.complex128)
            if learned.shape == true_tm.shape:
                num = np.abs(np.sum(learned * np.conj(true_tm), axis=1))
                den = np.linalg.norm(learned, axis=1) * np.linalg.norm(true_tm, axis=1)
                extras["model_tm_pearson"] = float(np.mean(num / np.maximum(den, 1e-30)))
        return extras

    @contextlib.contextmanager
    def _timed(self, iteration: int):
        """Log the round's digital and hardware time (``/timing``)."""
        wall, measured, hardware = self.now(), self.projector.wall_s, self.bench.hardware_s
        cpu, measured_cpu = time.process_time(), self.projector.cpu_s
        yield
        measure_wall = self.projector.wall_s - measured
        self.run.append_row(
            group="timing",
            iteration=iteration,
            digital_s=self.now() - wall - measure_wall,
            digital_cpu_s=time.process_time() - cpu - (self.projector.cpu_s - measured_cpu),
            hardware_s=self.bench.hardware_s - hardware,
            measure_wall_s=measure_wall,
        )
        if not self._timing_described:
            self._timing_described = True
            self.run.describe(
                {
                    f"timing/{k}": dict(zip(("units", "description"), v))
                    for k, v in TIMING_DOCS.items()
                }
            )

    _timing_described = False

    def _stage_progress(self, done: float, total: float):
        """Round ``done``'s stages as one bar that only moves forward (``round_progress``)."""
        from labpnn.control.loop import round_progress

        def report(stage: str, fraction: float) -> None:
            self.set_progress(done + fraction * 0.999, total, stage=stage)

        return round_progress(self.loop.stages, report)

    def _checkpoint(self, loop: ControlLoop, bench: Any) -> None:
        from labpnn.learning.checkpoint import split_state

        arrays, meta = loop.checkpoint_state()
        world_arrays, world_skeleton = split_state(bench.state_dict(), "world")
        arrays.update(world_arrays)
        meta.update(
            format=CHECKPOINT_FORMAT,
            procedure=self.name,
            world=world_skeleton,
            bench_queries=bench.queries,
            bench_hardware_s=bench.hardware_s,
            clock_s=self.projector.time_s,
            baseline=self.baseline,
        )
        self.run.checkpoint(arrays, meta)

    def _resume(self, loop: ControlLoop, bench: Any) -> None:
        from labpnn.learning.checkpoint import join_state

        arrays, meta = self.resume_state
        if meta.get("format") != CHECKPOINT_FORMAT or meta.get("procedure") != self.name:
            raise BadInput(
                f"the checkpoint was written by {meta.get('procedure', 'another procedure')}; "
                f"it cannot resume {self.name}"
            )
        loop.restore_state(arrays, meta)
        bench.load_state_dict(join_state(meta["world"], arrays))
        bench.queries, bench.hardware_s = (
            int(meta["bench_queries"]),
            float(meta["bench_hardware_s"]),
        )
        self.projector.t0 = bench.clock.now() - float(meta["clock_s"])
        self.baseline = meta.get("baseline")
        self.relog(loop.history)
        self.log.info(
            "resumed after iteration %d (%d queries so far)", loop.iteration, loop.queries
        )


def _fmt(info: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in info.items()
    )


class ControlActor(LearnedControlProcedure):
    """Project target images with an actor network trained through a learned forward model.

    Rahmani et al. (2020); camera intensities only, no TM. See the module docstring.
    """

    name = "control-actor"
    controller = ActorModelControl
