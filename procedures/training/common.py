"""The life cycle every training procedure shares: settings, epoch loop, logging, checkpoints.

A training procedure subclasses :class:`TrainingProcedure` and provides :meth:`build`, which
returns a :class:`labpnn.learning.Trainer` (and, on a fresh start, does any calibration it
needs: standardising the bench, fitting a twin). The base class then runs the epochs and, per
epoch, logs to ``/results``: ``epoch``, ``train_accuracy`` and ``test_accuracy`` (NaN where not
evaluated), ``loss`` and ``loss_layer<k>``, ``queries``, ``eval_queries``, ``twin_queries``,
``hardware_s``, ``digital_flops``, ``skipped_batches`` and ``wall_s``.

Every ``checkpoint_every`` epochs (and at epoch 0 and at the end) the trainer's checkpoint goes
into ``/checkpoints/latest``: the digital models, the optimisers, the random generators, the
cost ledger and history, the physical layers' standardisation and the simulated world's state.
``labpnn resume RUN.h5`` rebuilds the procedure from the file's parameters, restores that
checkpoint, re-logs the epochs it holds and continues, so the final metrics equal those of an
uninterrupted run with the same seed.

Bad hardware frames (NaN/Inf) skip their batch and are counted (``skipped_batches``); a loss
that diverges raises :class:`~labpnn.learning.TrainingDiverged`, the run ends ``failed`` and
the last good checkpoint stays in the file.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from labpnn.errors import BadInput
from labpnn.learning import Trainer, TrainingDiverged
from labpnn.procedure import (
    BooleanParameter,
    Estimate,
    FloatParameter,
    IntegerParameter,
    LabProcedure,
    ListParameter,
    Parameter,
)
from labpnn.procedures.training.layers import LabLayer
from labpnn.procedures.training.task import DATASETS, fit_task, load_task, nominal_sizes

__all__ = [
    "BENCH_DEFAULTS",
    "BenchDefaults",
    "BenchAccess",
    "TrainingProcedure",
    "PhysicalTrainingProcedure",
    "book_costs",
    "seconds_per_query",
]

CHECKPOINT_FORMAT = "labpnn-training-run/1"
COST_COLUMNS = (
    "queries", "eval_queries", "twin_queries", "hardware_s", "digital_flops", "skipped_batches"
)  # fmt: skip


@dataclass(frozen=True)
class BenchDefaults:
    """What a parameter left at 0 (or ``auto``) means on one kind of bench.

    ``probe`` is the input interval of the random probes that standardise the bench's outputs
    and feed twin fitting; ``input_period`` is set for benches whose inputs wrap (SLM phases).
    """

    layers: int
    input_range: float
    skip: bool
    standardise: bool = True
    probe: tuple[float, float] = (0.0, 1.0)
    input_period: float | None = None
    per_procedure: dict[str, dict[str, Any]] = field(default_factory=dict)


# Published settings where SCIENCE.md gives them (PhyLL: acoustic 2 layers, lr 5e-4, 200
# full-batch epochs, 10 inner steps; microwave 3 layers, lr 2.5e-4, 100 epochs). The optical
# PhyLL settings are ours: the paper's 350 epochs of batch 10 000 at lr 5e-5 are for MNIST.
BENCH_DEFAULTS: dict[str, BenchDefaults] = {
    "acoustic": BenchDefaults(
        layers=2,
        input_range=1.0,
        skip=True,
        probe=(0.0, 1.0),
        per_procedure={
            "phyll": {"epochs": 200, "lr": 5e-4, "batch_size": 0, "inner_steps": 10},
            "pat": {"epochs": 150, "lr": 3e-3, "batch_size": 32},
        },
    ),
    "microwave": BenchDefaults(
        layers=3,
        input_range=1.0,
        skip=True,
        # Standardised |S21| slowed PhyLL here (65-71 % against about 92 % after 40 epochs).
        standardise=False,
        probe=(0.0, 1.0),
        per_procedure={
            "phyll": {"epochs": 100, "lr": 2.5e-4, "batch_size": 0, "inner_steps": 10},
            "pat": {"epochs": 100, "lr": 3e-3, "batch_size": 32},
        },
    ),
    "optical": BenchDefaults(
        layers=2,
        input_range=0.5,
        skip=False,
        probe=(0.0, 1.0),
        input_period=1.0,
        per_procedure={
            "phyll": {"epochs": 10, "lr": 1e-3, "batch_size": 256, "inner_steps": 5},
            "pat": {"epochs": 30, "lr": 1e-3, "batch_size": 64},
        },
    ),
}
# Digital-only procedures (forward-forward) and unknown benches fall back to these.
DIGITAL_DEFAULTS = {
    "ff": {"epochs": 50, "lr": 0.03, "batch_size": 64},
}


def book_costs(trainer: Trainer, *, queries: int = 0, hardware_s: float = 0.0,
               digital_flops: float = 0.0, twin: bool = False) -> None:  # fmt: skip
    """Add hardware work done outside the trainer (standardisation probes, twin data) to its ledger.

    The trainer's cost ledger is checkpointed and resumed with it, so everything a run cost is
    counted once, in one place (S8 compares these totals).
    """
    costs = trainer._costs  # the ledger the trainer itself checkpoints and reports
    costs.queries += int(queries)
    costs.hardware_s += float(hardware_s)
    costs.digital_flops += float(digital_flops)
    if twin:
        costs.twin_queries += int(queries)


def seconds_per_query(config: Any) -> float:
    """Rough hardware seconds per sample for ``--dry-run`` estimates, from the station config."""
    kind, layout = config.bench.kind, config.bench.layout
    if kind == "acoustic":
        audio = next(iter(config.instruments.values())).options
        return (
            float(layout.get("duration_s", 0.1))
            + float(layout.get("settle_s", 0.15))
            + float(audio.get("max_latency_s", 0.05))
        )
    if kind == "microwave":
        vna = dict(layout.get("vna") or {})
        sweep_s = float(vna.get("points", 201)) / float(vna.get("ifbw_hz", 10e3))
        return float(layout.get("settle_s", 2e-3)) + sweep_s
    if kind == "optical":
        slm = config.instruments.get("slm")
        return 1.0 / float((slm.options if slm else {}).get("refresh_hz", 60.0))
    return 0.0


def _finite_or_nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


class TrainingProcedure(LabProcedure):
    """Base of the training procedures: shared parameters and the checkpointed epoch loop."""

    bench_kinds: ClassVar[tuple[str, ...]] = ("acoustic", "microwave", "optical")
    default_station: ClassVar[str] = "acoustic-sim"
    supports_resume: ClassVar[bool] = True
    watchdog_s: ClassVar[float] = 900.0
    family: ClassVar[str] = ""  # key into BenchDefaults.per_procedure / DIGITAL_DEFAULTS
    extra_columns: ClassVar[tuple[str, ...]] = ()  # filled by evaluation_extras()

    dataset = ListParameter("Task", choices=list(DATASETS), default="vowels")
    dataset_path = Parameter(
        "Vowel CSV (empty = $LABPNN_VOWELS_CSV, else synthetic vowels)", default=""
    )
    epochs = IntegerParameter(
        "Epochs (0 = the bench's default)", default=0, minimum=0, maximum=1_000_000
    )
    lr = FloatParameter(
        "Learning rate (0 = the bench's default)", default=0.0, minimum=0.0, maximum=100.0
    )
    batch_size = IntegerParameter(
        "Batch size (0 = the bench's default; >= training rows = full batch)",
        default=0,
        minimum=0,
        maximum=100_000_000,
    )
    seed = IntegerParameter("Seed", default=0, minimum=0, maximum=2**31 - 1)
    checkpoint_every = IntegerParameter(
        "Checkpoint every N epochs", default=10, minimum=1, maximum=1_000_000
    )
    eval_every = IntegerParameter(
        "Evaluate every N epochs (0 = about 20 times a run)",
        default=0,
        minimum=0,
        maximum=1_000_000,
    )
    train_eval_samples = IntegerParameter(
        "Training rows scored for train accuracy (0 = all)", default=0, minimum=0, maximum=10**9
    )
    divergence_bound = FloatParameter(
        "Loss above which training counts as diverged", default=1e6, minimum=0.0, maximum=1e300
    )

    # -- what subclasses provide --------------------------------------------------------------
    def build(self, task: Any, resume_meta: dict | None) -> Trainer:
        """The trainer for ``task``; on a fresh start (``resume_meta is None``) also calibrate."""
        raise NotImplementedError

    def queries_per_epoch(self, n_train: int, n_classes: int) -> int:
        """Hardware queries of one training epoch (for estimates)."""
        return 0

    def queries_per_evaluation(self, n_rows: int, n_classes: int) -> int:
        """Hardware queries to score ``n_rows`` rows (for estimates)."""
        return 0

    def setup_queries(self) -> int:
        """Hardware queries before the first epoch (probes, twin data), for estimates."""
        return 0

    def checkpoint_extra(self) -> dict:
        """JSON metadata a subclass needs to rebuild its trainer on resume."""
        return {}

    def evaluation_extras(self, trainer: Trainer, task: Any) -> dict[str, float]:
        """More columns measured at each evaluation (e.g. in-silico's twin accuracy)."""
        return {}

    # -- settings -------------------------------------------------------------------------------
    @property
    def bench_kind(self) -> str:
        station = (
            self.station if self.station is not None else getattr(self, "station_config", None)
        )
        return station.bench.kind if station is not None else ""

    def default(self, key: str) -> Any:
        bench = BENCH_DEFAULTS.get(self.bench_kind)
        if bench is not None and self.family in bench.per_procedure:
            table = bench.per_procedure[self.family]
            if key in table:
                return table[key]
        return DIGITAL_DEFAULTS.get(self.family, {}).get(key)

    def setting(self, key: str) -> Any:
        """A parameter's value, with 0 (or ``auto``) replaced by the bench's default."""
        value = getattr(self, key)
        if value in (0, 0.0, "auto", None):
            fallback = self.default(key)
            if fallback is not None:
                return fallback
        return value

    def effective_settings(self) -> dict[str, Any]:
        """Every parameter with the bench defaults filled in (recorded in the run file)."""
        return {key: self.setting(key) for key in self._parameters}

    @property
    def n_epochs(self) -> int:
        return int(self.setting("epochs"))

    @property
    def batch(self) -> int | None:
        size = int(self.setting("batch_size") or 0)
        return size or None

    @property
    def evaluation_period(self) -> int:
        return int(self.eval_every) or max(1, round(self.n_epochs / 20))

    def task_for(self, n_in: int | None = None, input_range: float = 1.0) -> tuple[Any, dict]:
        """The data set fitted to a physical input of width ``n_in`` (or as is, for digital)."""
        ds = load_task(self.dataset, int(self.seed), self.dataset_path)
        if n_in is None:
            return ds, {k: v for k, v in ds.meta.items() if k != "feature_names"}
        return fit_task(ds, n_in, input_range)

    # -- hooks of LabProcedure --------------------------------------------------------------
    def validate(self) -> None:
        if self.bench_kinds:
            super().validate()
        load_task(self.dataset, int(self.seed), self.dataset_path)  # BadInput before any start
        if self.n_epochs < 1:
            raise BadInput(f"{self.name}: epochs must be >= 1 (got {self.n_epochs})")
        if self.resume_state is not None:
            meta = self.resume_state[1]
            if meta.get("format") != CHECKPOINT_FORMAT or meta.get("procedure") != self.name:
                raise BadInput(
                    f"the checkpoint was written by {meta.get('procedure', 'another procedure')} "
                    f"({meta.get('format')}); it cannot resume {self.name}"
                )

    def estimate(self) -> Estimate:
        n_train, n_test, n_classes, _ = nominal_sizes(self.dataset)
        n_eval_rows = n_test + (min(self.train_eval_samples, n_train) or n_train)
        n_evaluations = math.ceil(self.n_epochs / self.evaluation_period)
        queries = (
            self.setup_queries()
            + self.n_epochs * self.queries_per_epoch(n_train, n_classes)
            + n_evaluations * self.queries_per_evaluation(n_eval_rows, n_classes)
        )
        config = getattr(self, "station_config", None)
        per_query = seconds_per_query(config) if config is not None else 0.0
        return Estimate(
            queries=int(queries),
            seconds=queries * per_query,
            note=f"{self.n_epochs} epochs of {self.dataset}, evaluated every "
            f"{self.evaluation_period}; hardware time only",
        )

    # -- the run ------------------------------------------------------------------------------
    def execute(self) -> None:
        resume_meta = None
        if self.resume_state is not None:
            arrays, resume_meta = self.resume_state
        self._epoch_now = 0
        task = self.prepare_task()
        trainer = self.build(task, resume_meta)
        self.trainer = trainer
        self.run.set_attrs("/", effective_parameters=self.effective_settings())
        if resume_meta is not None:
            trainer.restore_state(arrays, resume_meta["trainer"])
            self.log.info("resumed %s from its checkpoint at epoch %d", self.name, trainer.epoch)
            for record in trainer.history:
                self._log_epoch(record, wall_s=float("nan"))
        else:
            self._checkpoint(trainer)
        self._train(trainer, task)

    def prepare_task(self) -> Any:
        """Load the task for this run and record its metadata; subclasses fit it to the bench."""
        task, meta = self.task_for()
        self.record_task(meta)
        return task

    def record_task(self, meta: dict) -> None:
        self.task_meta = meta
        self.run.set_attrs("/", dataset=meta, dataset_source=str(meta.get("source", "")))
        if meta.get("source") == "synthetic":
            self.log.warning(
                "no vowel CSV given: training on the synthetic vowels drawn from the published "
                "formant statistics (set dataset_path or LABPNN_VOWELS_CSV for the real data)"
            )

    def _train(self, trainer: Trainer, task: Any) -> None:
        epochs = self.n_epochs
        period = self.evaluation_period
        n_train_eval = int(self.train_eval_samples) or task.x_train.shape[0]
        while trainer.epoch < epochs:
            self._epoch_now = trainer.epoch
            start = time.perf_counter()
            try:
                record = trainer.step_epoch(task, evaluate=False)
            except TrainingDiverged as exc:
                self.log.error(
                    "%s; the file keeps the last good checkpoint (epoch %d)",
                    exc, self._checkpoint_epoch,
                )  # fmt: skip
                raise
            if record.get("loss") is None:
                self.log.warning(
                    "epoch %d: every batch was skipped (the bench returned NaN/Inf)", trainer.epoch
                )
            if trainer.epoch % period == 0 or trainer.epoch == epochs:
                record["test_accuracy"] = trainer.evaluate(task.x_test, task.y_test)
                record["train_accuracy"] = trainer.evaluate(
                    task.x_train[:n_train_eval], task.y_train[:n_train_eval]
                )
                record.update(self.evaluation_extras(trainer, task))
                record.update(trainer.costs.as_dict())
            self._log_epoch(record, wall_s=time.perf_counter() - start)
            if trainer.epoch % int(self.checkpoint_every) == 0 or trainer.epoch == epochs:
                self._checkpoint(trainer)
            self.progress(
                trainer.epoch, epochs, test_accuracy=_finite_or_nan(record["test_accuracy"])
            )
        self._write_summary(trainer, final=True)

    def _log_epoch(self, record: dict, wall_s: float) -> None:
        row: dict[str, Any] = {
            "epoch": int(record["epoch"]),
            "train_accuracy": _finite_or_nan(record.get("train_accuracy")),
            "test_accuracy": _finite_or_nan(record.get("test_accuracy")),
            "loss": _finite_or_nan(record.get("loss")),
        }
        for k, loss in enumerate(record.get("layer_losses") or []):
            row[f"loss_layer{k + 1}"] = _finite_or_nan(loss)
        for key in COST_COLUMNS:
            row[key] = record.get(key, 0)
        for key in self.extra_columns:
            row[key] = _finite_or_nan(record.get(key))
        row["wall_s"] = wall_s
        self.run.append_row(**row)
        if record.get("test_accuracy") is not None:
            self._write_summary(self.trainer, final=False)

    def _write_summary(self, trainer: Trainer, final: bool) -> None:
        evaluated = [r for r in trainer.history if r.get("test_accuracy") is not None]
        costs = trainer.costs.as_dict()
        summary: dict[str, Any] = {
            "queries": int(costs["queries"]),
            "hardware_s": float(costs["hardware_s"]),
            "digital_flops": float(costs["digital_flops"]),
            "eval_queries": int(costs["eval_queries"]),
            "twin_queries": int(costs["twin_queries"]),
            "skipped_batches": int(costs["skipped_batches"]),
            "epochs": int(trainer.epoch),
        }
        if evaluated:
            summary["test_accuracy"] = float(evaluated[-1]["test_accuracy"])
            summary["train_accuracy"] = float(evaluated[-1]["train_accuracy"])
            summary["best_test_accuracy"] = max(float(r["test_accuracy"]) for r in evaluated)
        self.run.set_summary(**summary)
        if final:
            self.log.info(
                "%s done: test accuracy %.4f (best %.4f) after %d epochs, %d queries",
                self.name, summary.get("test_accuracy", float("nan")),
                summary.get("best_test_accuracy", float("nan")), trainer.epoch, summary["queries"],
            )  # fmt: skip

    def _checkpoint(self, trainer: Trainer) -> None:
        arrays, meta = trainer.checkpoint_state()
        self.run.checkpoint(
            arrays,
            {
                "format": CHECKPOINT_FORMAT,
                "procedure": self.name,
                "epoch": trainer.epoch,
                "trainer": meta,
                "extra": self.checkpoint_extra(),
            },
        )
        self._checkpoint_epoch = trainer.epoch

    _checkpoint_epoch = 0

    # -- reports --------------------------------------------------------------------------------
    @classmethod
    def plot_report(cls, f: Any, figure: Any) -> None:
        """Accuracy against epochs and hardware queries, and each layer's loss."""
        results = f["results"] if "results" in f else {}
        if "epoch" not in results:
            ax = figure.add_subplot(1, 1, 1)
            ax.text(0.5, 0.5, "no epochs logged", ha="center", va="center")
            ax.set_axis_off()
            return
        col = {name: np.asarray(results[name][()], dtype=float) for name in results}
        epoch = col["epoch"]
        evaluated = np.isfinite(col.get("test_accuracy", np.full_like(epoch, np.nan)))
        ax = figure.add_subplot(2, 2, 1)
        others = sorted(
            k
            for k in col
            if k.endswith("_accuracy") and k not in ("train_accuracy", "test_accuracy")
        )
        for name, style in (
            ("train_accuracy", "s--"),
            ("test_accuracy", "o-"),
            *((k, "^:") for k in others),
        ):
            if name in col:
                ax.plot(epoch[evaluated], col[name][evaluated], style, ms=3, label=name)
        ax.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        ax = figure.add_subplot(2, 2, 2)
        if "queries" in col and evaluated.any():
            ax.plot(col["queries"][evaluated], col["test_accuracy"][evaluated], "o-", ms=3)
            ax.set_xscale("log")
        ax.set(xlabel="hardware queries (incl. evaluation, twin data)", ylabel="test accuracy")
        ax.grid(alpha=0.3)
        ax = figure.add_subplot(2, 2, 3)
        losses = sorted(k for k in col if k.startswith("loss_layer")) or ["loss"]
        for name in losses:
            ax.plot(epoch, col[name], label=name)
        ax.set(xlabel="epoch", ylabel="loss")
        if all(np.nanmin(col[n]) > 0 for n in losses if np.isfinite(col[n]).any()):
            ax.set_yscale("log")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        ax = figure.add_subplot(2, 2, 4)
        if "digital_flops" in col and evaluated.any():
            ax.plot(col["digital_flops"][evaluated], col["test_accuracy"][evaluated], "o-", ms=3)
            ax.set_xscale("log")
        ax.set(xlabel="digital FLOPs", ylabel="test accuracy")
        ax.grid(alpha=0.3)


class BenchAccess:
    """Mixin for procedures that query the bench: the LabLayer over it and its standardisation."""

    standardise = ListParameter(
        "Standardise each physical output on random probes (auto = the bench's default)",
        choices=["auto", "on", "off"],
        default="auto",
    )
    standardise_samples = IntegerParameter(
        "Random probes for the standardisation", default=256, minimum=2, maximum=10**7
    )

    @property
    def bench_defaults(self) -> BenchDefaults:
        return BENCH_DEFAULTS.get(self.bench_kind, BENCH_DEFAULTS["acoustic"])

    def physical_layer(self) -> LabLayer:
        """The bench as a :class:`LabLayer` (built on first use, then reused)."""
        if getattr(self, "_layer", None) is None:
            from labpnn.bench import make_bench

            bench = make_bench(self.station)
            self._layer = LabLayer(
                bench,
                on_query=self.on_query,
                name=self.bench_kind,
                recentre=bool(getattr(self, "recentre", False)),
            )
        return self._layer

    @property
    def standardised(self) -> bool:
        """Whether this run standardises the bench's outputs (``standardise`` resolved)."""
        if self.standardise == "auto":
            return self.bench_defaults.standardise
        return self.standardise == "on"

    def standardise_on_probes(self) -> dict[str, float]:
        """Standardise the bench's outputs on random probes (if asked); returns their cost."""
        if not self.standardised:
            return {"queries": 0, "hardware_s": 0.0, "probes": 0, "bad_probes": 0}
        generator = torch.Generator().manual_seed(int(self.seed) + 7919)
        low, high = self.bench_defaults.probe
        cost = self.physical_layer().standardise(
            int(self.standardise_samples), low, high, generator
        )
        self.log.info(
            "standardised the %s outputs on %d random probes (%d bad)",
            self.bench_kind, cost["probes"], cost["bad_probes"],
        )  # fmt: skip
        return cost

    def on_query(self, n: int) -> None:
        """Called after every bench measurement: feeds the watchdog, honours abort requests."""
        now = time.monotonic()
        if now - getattr(self, "_last_beat", 0.0) >= 0.5:
            self._last_beat = now
            self.progress(getattr(self, "_epoch_now", 0), max(1, self.progress_total()))

    def progress_total(self) -> int:
        return 1


class PhysicalTrainingProcedure(BenchAccess, TrainingProcedure):
    """A training procedure on a bench: builds the stack of physical layers the trainer sees."""

    layers = IntegerParameter(
        "Physical layers (0 = the bench's published depth)", default=0, minimum=0, maximum=64
    )
    recentre = BooleanParameter(
        "Centre outputs on a running mean of recent measurements (drifting media; needs standardise)",
        default=False,
    )
    input_range = FloatParameter(
        "Largest input value sent to the bench (0 = the bench's default)",
        default=0.0,
        minimum=0.0,
        maximum=1e6,
    )

    def default(self, key: str) -> Any:
        bench = BENCH_DEFAULTS.get(self.bench_kind)
        if bench is not None and key in ("layers", "input_range"):
            return getattr(bench, key)
        if bench is not None and key == "standardise":
            return "on" if bench.standardise else "off"
        return super().default(key)

    @property
    def n_layers(self) -> int:
        return int(self.setting("layers"))

    def progress_total(self) -> int:
        return self.n_epochs

    def validate(self) -> None:
        super().validate()
        if self.recentre and not self.standardised:
            raise BadInput(
                f"{self.name}: recentre=true needs the outputs standardised; set standardise=on"
            )
        task = load_task(self.dataset, int(self.seed), self.dataset_path)
        fit_task(task, self.physical_layer().n_in, float(self.setting("input_range")))

    def physical_stack(self) -> list:
        """``layers`` uses of the bench: the LabLayer first, then aliases of it."""
        layer = self.physical_layer()
        return [layer] + [layer.alias(k) for k in range(1, self.n_layers)]

    def prepare_task(self) -> Any:
        task, meta = self.task_for(self.physical_layer().n_in, float(self.setting("input_range")))
        self.record_task(meta)
        return task

    def standardise_layer(self, trainer: Trainer) -> None:
        """Fresh start: standardise the bench's outputs, booking the probes in the trainer."""
        cost = self.standardise_on_probes()
        book_costs(trainer, queries=cost["queries"], hardware_s=cost["hardware_s"])

    def setup_queries(self) -> int:
        return int(self.standardise_samples) if self.standardised else 0
