"""The life cycle every training procedure shares: settings, epoch loop, logging, checkpoints.

A training procedure subclasses :class:`TrainingProcedure` and provides :meth:`build`, which
returns a :class:`labpnn.learning.Trainer` (and, on a fresh start, does any calibration it
needs: standardising the bench, fitting a twin). The base class then runs the epochs and, per
epoch, logs to ``/results``: ``epoch``, ``train_accuracy`` and ``test_accuracy`` (NaN where not
evaluated), ``loss`` and ``loss_layer<k>``, ``queries``, ``eval_queries``, ``twin_queries``,
``hardware_s``, ``digital_flops``, ``skipped_batches``, ``bad_eval_rows`` and ``wall_s``.

Every ``checkpoint_every`` epochs (and at epoch 0 and at the end) the trainer's checkpoint goes
into ``/checkpoints/latest``: the digital models, the optimisers, the random generators, the
cost ledger and history, the physical layers' standardisation and the simulated world's state.
``labpnn resume RUN.h5`` rebuilds the procedure from the file's parameters, restores that
checkpoint, re-logs the epochs it holds and continues, so the final metrics equal those of an
uninterrupted run with the same seed.

Bad hardware frames (NaN/Inf) skip their batch and are counted (``skipped_batches``, and a
warning for every epoch that skipped any); evaluated rows whose measurement was not finite are
scored wrong and counted (``bad_eval_rows``). A bench that gives no usable data ends the run
``failed`` (:data:`DEAD_EPOCHS`, :class:`BenchGaveNoData`), as does a loss that diverges
(:class:`~labpnn.learning.TrainingDiverged`). A failed or stopped (Ctrl-C, SIGTERM) run first
writes the state after its last finished epoch as the checkpoint, so ``labpnn resume`` loses no
finished epoch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from labpnn.errors import BadInput, LabpnnError, RunAborted
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
    "BenchGaveNoData",
    "TrainingStopped",
    "BenchDefaults",
    "BenchAccess",
    "TrainingProcedure",
    "PhysicalTrainingProcedure",
    "book_costs",
    "seconds_per_query",
]

CHECKPOINT_FORMAT = "labpnn-training-run/1"
# Parameters a resume may change: they decide how long the run goes and what it records when,
# not the model, the data, the optimiser or how the bench is used. ``train_eval_samples`` is
# not among them: it changes what ``train_accuracy`` measures part-way through the run.
RESUME_MAY_CHANGE = ("epochs", "eval_every", "checkpoint_every", "divergence_bound")
# The run fails after this many consecutive epochs in which every training batch was skipped
# or no evaluated row was finite (the bench returned only NaN/Inf), or when the final
# evaluation gets no finite row.
DEAD_EPOCHS = 2
# Keeping the state after the last finished epoch in memory (for a stop between checkpoints)
# copies the whole trainer and world state, tens of MB for a simulated TM. It is taken after
# every epoch unless the last copy cost more than this share of the training time since.
CAPTURE_SHARE = 0.02
# Without a progress bar, one line per evaluated epoch, at most one every this many seconds
# (the first and the last evaluated epoch always).
EPOCH_LINE_EVERY_S = 5.0
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
            # lr 3e-3 ended at 0.37 and 0.46 test accuracy (seeds 0, 1, vowels), 1e-3 at 0.54, 0.65;
            # with the final twin, 1e-3 gave 0.505 ± 0.086 over seeds 0-3 (docs/training.md)
            "pat": {"epochs": 100, "lr": 1e-3, "batch_size": 32},
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
# Per data set, over DIGITAL_DEFAULTS. FF on the vowels with the digits' settings stays near
# chance (0.27 after 50 epochs: 206 rows make 4 updates an epoch). lr 0.1 for 200 epochs
# reached 0.96, 0.98, 0.92, 0.87, 0.87 (seeds 0-4, synthetic vowels, 2x500, batch 64).
DIGITAL_DATASET_DEFAULTS = {
    ("ff", "vowels"): {"epochs": 200, "lr": 0.1},
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
        audio = config.instruments.get("audio")
        audio = audio.options if audio is not None else {}
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


class TrainingStopped(LabpnnError):
    """A training run ended early for a reason its message states (the run ends ``failed``)."""

    explains_itself = True  # the runner reports the message without the class name


class BenchGaveNoData(TrainingStopped):
    """The bench returned no finite measurement for a whole epoch's training or evaluation."""


# Units and descriptions of the /results columns and /summary keys (HDF5 attributes).
_CUMULATIVE = "cumulative since the start of the run (resumes included)"
COLUMN_DOCS: dict[str, tuple[str, str]] = {
    "epoch": ("count", "epochs finished (1 = after the first epoch)"),
    "train_accuracy": (
        "fraction 0..1",
        "accuracy on the first train_eval_samples training rows (all when 0); NaN when this "
        "epoch was not evaluated or its evaluation had no finite measurement",
    ),
    "test_accuracy": (
        "fraction 0..1",
        "accuracy on the test rows; NaN when this epoch was not evaluated or its evaluation had "
        "no finite measurement; a row whose measurement was not finite counts as wrong",
    ),
    "loss": ("1", "mean training loss of the epoch; NaN when every batch was skipped"),
    "queries": (
        "count",
        f"hardware queries (training, evaluation, standardisation, twin data), {_CUMULATIVE}",
    ),
    "eval_queries": ("count", f"hardware queries spent on evaluation, {_CUMULATIVE}"),
    "twin_queries": ("count", f"hardware queries spent on twin data, {_CUMULATIVE}"),
    "hardware_s": (
        "s",
        "bench time on the station's clock (simulated time on a simulated bench, not wall "
        f"time), {_CUMULATIVE}",
    ),
    "digital_flops": ("FLOP", f"digital floating-point operations, {_CUMULATIVE}"),
    "skipped_batches": (
        "count",
        f"training batches skipped because the bench returned NaN/Inf, {_CUMULATIVE}",
    ),
    "bad_eval_rows": (
        "count",
        "rows of this epoch's evaluation (test rows and scored training rows) whose "
        "measurement was not finite; NaN when the epoch was not evaluated",
    ),
    "wall_s": (
        "s",
        "wall-clock time of this epoch in the process that ran it; NaN for epochs re-logged "
        "from a checkpoint by labpnn resume",
    ),
    "twin_test_accuracy": ("fraction 0..1", "test accuracy the digital twin alone predicts"),
}
SUMMARY_DOCS: dict[str, tuple[str, str]] = {
    "status": ("", "how the run ended: completed, failed or aborted"),
    "epochs": ("count", "epochs finished"),
    "test_accuracy": ("fraction 0..1", "test accuracy at the last evaluation with finite data"),
    "train_accuracy": ("fraction 0..1", "train accuracy at that evaluation"),
    "best_test_accuracy": ("fraction 0..1", "best test accuracy of any evaluation"),
    "bad_eval_rows": ("count", "rows of that evaluation whose measurement was not finite"),
    "saturated_frames": (
        "count",
        "camera frames (optical bench) with a pixel at full scale, whose features are clipped; "
        "counted in this process (a resumed run counts from its resume)",
    ),
    **{
        key: (units, text.replace(_CUMULATIVE, "total of the run"))
        for key, (units, text) in COLUMN_DOCS.items()
        if key in COST_COLUMNS
    },
}


def column_doc(name: str) -> tuple[str, str] | None:
    if name in COLUMN_DOCS:
        return COLUMN_DOCS[name]
    if name.startswith("loss_layer"):
        return "1", f"mean training loss of layer {name.removeprefix('loss_layer')} in the epoch"
    return None


class TrainingProcedure(LabProcedure):
    """Base of the training procedures: shared parameters and the checkpointed epoch loop."""

    bench_kinds: ClassVar[tuple[str, ...]] = ("acoustic", "microwave", "optical")
    default_station: ClassVar[str] = "acoustic-sim"
    supports_resume: ClassVar[bool] = True
    # between epochs, after the epoch's checkpoint: the bench idles, nothing is half-measured
    supports_pause: ClassVar[bool] = True
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
        by_dataset = DIGITAL_DATASET_DEFAULTS.get((self.family, str(self.dataset)), {})
        if key in by_dataset:
            return by_dataset[key]
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

    def check_resume(self, previous: dict[str, Any]) -> None:
        """Refuse a resume that would change what the checkpoint was trained with, or do nothing.

        Values are compared as resolved (``epochs=0`` is the bench's default), so spelling out
        a default is no change.
        """
        meta = self.resume_state[1]
        done = int(meta.get("epoch", 0))
        path = previous.get("path", "the run file")
        before = type(self)()
        for key, value in (previous.get("parameters") or {}).items():
            if key in before._parameters:
                before.set_parameter(key, value)
        before.station_config = self.station_config
        old, new = before.effective_settings(), self.effective_settings()
        changed = [
            f"{key} (the checkpoint was trained with {old[key]!r}, asked {new[key]!r})"
            for key in self._parameters
            if key not in RESUME_MAY_CHANGE and old.get(key) != new.get(key)
        ]
        if changed:
            raise BadInput(
                f"{self.name}: labpnn resume cannot change {'; '.join(changed)}. Those define the "
                "model, the data, the optimiser or how the bench is used; a resume may change "
                f"only {', '.join(RESUME_MAY_CHANGE)}. To train with other values, start a new "
                f"run: labpnn run --from {path} --set NAME=VALUE"
            )
        if self.n_epochs < done:
            raise BadInput(
                f"{self.name}: cannot resume to epochs={self.n_epochs}: the checkpoint is at "
                f"epoch {done}; give epochs >= {done}"
            )
        if self.n_epochs == done and previous.get("status") == "completed":
            raise BadInput(
                f"{path} is a completed run ({done}/{done} epochs); nothing to resume. To "
                f"train further, raise epochs: labpnn resume {path} --set epochs=N with N > {done}"
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
        measures = config is not None and not self.digital_only
        per_query = seconds_per_query(config) if measures else 0.0
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
            # The new file is resumable at once, like a fresh run's file from epoch 0.
            self._checkpoint(trainer)
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
        try:
            self._train_epochs(trainer, task)
        except BaseException as exc:
            # however the run ends early (a stop, a dead bench, a lost device, a second Ctrl-C),
            # every finished epoch is kept and the summary says how far it got
            epoch = self._save_last_finished(trainer)
            aborted = isinstance(exc, RunAborted)
            self._write_summary_safely(trainer, "aborted" if aborted else "failed")
            if aborted:
                raise RunAborted(
                    f"the file keeps a checkpoint at epoch {epoch}; labpnn resume "
                    f"{self.run.path} continues from epoch {epoch}"
                ) from None
            if isinstance(exc, TrainingStopped):
                raise type(exc)(
                    f"{exc}; the run stopped, and the file keeps a checkpoint at epoch {epoch}"
                ) from exc.__cause__
            self.log.error("the file keeps a checkpoint at epoch %d", epoch)
            raise
        self._write_summary(trainer, final=True)

    def _train_epochs(self, trainer: Trainer, task: Any) -> None:
        epochs = self.n_epochs
        period = self.evaluation_period
        n_train_eval = int(self.train_eval_samples) or task.x_train.shape[0]
        n_train = int(task.x_train.shape[0])
        batch = getattr(trainer, "batch_size", None) or self.batch
        n_batches = 1 if not batch or batch >= n_train else math.ceil(n_train / batch)
        self._last_finished = None
        self._capture_s, self._since_capture = 0.0, 0.0
        self._last_line = -math.inf
        self._shown: dict[str, float] = {}
        dead_epochs = 0
        while trainer.epoch < epochs:
            self._epoch_now = trainer.epoch
            start = time.perf_counter()
            skipped_before = trainer.costs.skipped_batches
            try:
                record = trainer.step_epoch(task, evaluate=False)
            except TrainingDiverged as exc:
                loss = (
                    f"loss {exc.loss:.6g} exceeds divergence_bound={exc.bound:g}"
                    if math.isfinite(exc.loss)
                    else f"loss is {exc.loss}"
                )
                raise TrainingStopped(
                    f"training diverged in epoch {exc.epoch + 1}: {loss}"
                ) from exc
            epoch = trainer.epoch
            skipped = int(record.get("skipped_batches", 0)) - int(skipped_before)
            no_training_data = record.get("loss") is None or skipped >= n_batches
            if no_training_data:
                self.log.warning(
                    "epoch %d: every batch was skipped (%d of %d; the bench returned NaN/Inf)",
                    epoch, max(skipped, n_batches), n_batches,
                )  # fmt: skip
            elif skipped:
                self.log.warning(
                    "epoch %d: %d of %d batches skipped (%.0f %%; the bench returned NaN/Inf)",
                    epoch, skipped, n_batches, 100.0 * skipped / n_batches,
                )  # fmt: skip
            evaluated = epoch % period == 0 or epoch == epochs
            no_eval_data = False
            if evaluated:
                test, bad_test = trainer.score(task.x_test, task.y_test)
                train, bad_train = trainer.score(
                    task.x_train[:n_train_eval], task.y_train[:n_train_eval]
                )
                n_rows = int(task.x_test.shape[0]) + int(task.x_train[:n_train_eval].shape[0])
                bad_rows = bad_test + bad_train
                no_eval_data = bad_rows >= n_rows
                # No finite row measured: the accuracy is unknown, not 0.
                record["test_accuracy"] = None if no_eval_data else test
                record["train_accuracy"] = None if no_eval_data else train
                record["bad_eval_rows"] = bad_rows
                if bad_rows and not no_eval_data:
                    self.log.warning(
                        "epoch %d: %d of %d evaluated rows gave no finite measurement (scored "
                        "as wrong)", epoch, bad_rows, n_rows,
                    )  # fmt: skip
                record.update(self.evaluation_extras(trainer, task))
                record.update(trainer.costs.as_dict())
            self._warn_saturation(epoch)
            wall_s = time.perf_counter() - start
            self._log_epoch(record, wall_s=wall_s)
            self._since_capture += wall_s
            # An epoch without usable training data or without one finite evaluated row is dead;
            # a stall can kill one, two in a row (or a dead final evaluation) stop the run.
            dead_epochs = dead_epochs + 1 if (no_training_data or no_eval_data) else 0
            stopping = dead_epochs >= DEAD_EPOCHS or (no_eval_data and epoch == epochs)
            if no_training_data and (epoch != epochs or stopping):
                pass  # nothing learnt: a stop keeps the state of the last epoch with data
            elif epoch % int(self.checkpoint_every) == 0 or epoch == epochs:
                self._checkpoint(trainer)
                self._last_finished, self._since_capture = None, 0.0
            elif self._capture_s <= CAPTURE_SHARE * self._since_capture:
                # kept in memory, written if the run stops before the next checkpoint
                began = time.perf_counter()
                self._last_finished = trainer.checkpoint_state()
                self._capture_s, self._since_capture = time.perf_counter() - began, 0.0
            if stopping:
                what = (
                    f"none of the {n_rows} evaluated rows" if no_eval_data else "no training batch"
                )
                raise BenchGaveNoData(
                    f"the bench returned no finite measurements in epoch {epoch}: {what} "
                    f"could be measured (NaN/Inf), the {dead_epochs} epoch(s) in a row without "
                    "usable data; check the instrument"
                )
            if evaluated:
                self._epoch_line(record, epochs, skipped, n_batches)
            info: dict[str, Any] = {"epoch": f"{epoch}/{epochs}"}
            for key in ("test_accuracy", "train_accuracy"):
                if record.get(key) is not None:
                    self._shown[key] = float(record[key])
            info.update(self._shown)
            if skipped:
                info["skipped"] = skipped
            self.progress(epoch, epochs, **info)

    def _bench(self) -> Any:
        """The bench the run measures through (None for a digital run)."""
        layer = getattr(self, "_layer", None)
        return getattr(layer, "layer", None)

    def _warn_saturation(self, epoch: int) -> None:
        """Once, when the bench first reports saturated frames: their features are clipped."""
        bench = self._bench()
        if getattr(self, "_saturation_warned", False) or not getattr(bench, "saturated_frames", 0):
            return
        self._saturation_warned = True
        pixels = bench.measured_frames * int(np.prod(bench.camera.roi[2:]))
        exposure = float(bench.camera.exposure_s)
        self.log.warning(
            "epoch %d: %d of the %d camera frames so far had pixels at full scale (%.2g %% of "
            "their pixels), whose features are clipped: lower the light or the exposure "
            "(now %.3g s), e.g. --station-set instruments.camera.exposure_s=%.3g",
            epoch, bench.saturated_frames, bench.measured_frames,
            100.0 * bench.saturated_pixels / max(pixels, 1), exposure, exposure / 2,
        )  # fmt: skip

    def _epoch_line(self, record: dict, epochs: int, skipped: int, n_batches: int) -> None:
        """Without a progress bar: one INFO line per evaluated epoch, rate-limited."""
        if self.progress_bar_shown:
            return
        now = time.monotonic()
        first = self._last_line == -math.inf
        if not (first or record["epoch"] == epochs or now - self._last_line >= EPOCH_LINE_EVERY_S):
            return
        self._last_line = now

        def fmt(value: Any) -> str:
            return "n/a" if value is None else f"{float(value):.4g}"

        extra = (
            f", {record['bad_eval_rows']} evaluated rows not finite"
            if record.get("bad_eval_rows")
            else ""
        )
        self.log.info(
            "epoch %d/%d: train accuracy %s, test accuracy %s, loss %s, skipped batches %d/%d%s",
            record["epoch"], epochs, fmt(record.get("train_accuracy")),
            fmt(record.get("test_accuracy")), fmt(record.get("loss")), skipped, n_batches, extra,
        )  # fmt: skip

    def _save_last_finished(self, trainer: Trainer) -> int:
        """Write the state after the last finished epoch as the checkpoint (if newer); its epoch."""
        pending = getattr(self, "_last_finished", None)
        if pending is not None:
            arrays, meta = pending
            if int(meta["epoch"]) > self._checkpoint_epoch:
                try:
                    self._write_checkpoint(arrays, meta)
                except Exception as exc:  # never hide why the run stopped
                    self.log.error("could not write the last finished epoch's checkpoint: %s", exc)
            self._last_finished = None
        return self._checkpoint_epoch

    def _write_summary_safely(self, trainer: Trainer, status: str) -> None:
        try:
            self._write_summary(trainer, final=False, status=status)
        except Exception as exc:  # never hide why the run stopped
            self.log.error("could not write the summary: %s", exc)

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
        row["bad_eval_rows"] = _finite_or_nan(record.get("bad_eval_rows"))
        for key in self.extra_columns:
            row[key] = _finite_or_nan(record.get(key))
        row["wall_s"] = wall_s
        self.run.append_row(**row)
        self._logged_epoch = row["epoch"]
        undescribed = [k for k in row if k not in self._described and column_doc(k)]
        if undescribed:
            self.run.describe(
                {
                    f"results/{k}": dict(zip(("units", "description"), column_doc(k)))
                    for k in undescribed
                }
            )
            self._described = self._described | set(undescribed)
        if record.get("test_accuracy") is not None:
            self._write_summary(self.trainer, final=False)

    _described: frozenset[str] | set[str] = frozenset()

    def _write_summary(self, trainer: Trainer, final: bool, status: str | None = None) -> None:
        evaluated = [r for r in trainer.history if r.get("test_accuracy") is not None]
        costs = trainer.costs.as_dict()
        summary: dict[str, Any] = {
            "queries": int(costs["queries"]),
            "hardware_s": float(costs["hardware_s"]),
            "digital_flops": float(costs["digital_flops"]),
            "eval_queries": int(costs["eval_queries"]),
            "twin_queries": int(costs["twin_queries"]),
            "skipped_batches": int(costs["skipped_batches"]),
            # the last epoch logged (a stop can come after an epoch's training, before its row)
            "epochs": int(getattr(self, "_logged_epoch", trainer.epoch)),
            "status": "completed" if final else (status or "running"),
        }
        saturated = getattr(self._bench(), "saturated_frames", None)
        if saturated is not None:
            summary["saturated_frames"] = int(saturated)
        if evaluated:
            summary["test_accuracy"] = float(evaluated[-1]["test_accuracy"])
            summary["train_accuracy"] = float(evaluated[-1]["train_accuracy"])
            summary["best_test_accuracy"] = max(float(r["test_accuracy"]) for r in evaluated)
            if evaluated[-1].get("bad_eval_rows") is not None:
                summary["bad_eval_rows"] = int(evaluated[-1]["bad_eval_rows"])
        self.run.set_summary(**summary)
        if not getattr(self, "_summary_described", False):
            self._summary_described = True
            self.run.describe_summary(SUMMARY_DOCS)
        if final:
            self.log.info(
                "%s done: test accuracy %.4f (best %.4f) after %d epochs, %d queries",
                self.name, summary.get("test_accuracy", float("nan")),
                summary.get("best_test_accuracy", float("nan")), trainer.epoch, summary["queries"],
            )  # fmt: skip

    def _checkpoint(self, trainer: Trainer) -> None:
        self._write_checkpoint(*trainer.checkpoint_state())

    def _write_checkpoint(self, arrays: dict, meta: dict) -> None:
        """``trainer.checkpoint_state()`` (now or kept from an earlier epoch) into the file."""
        self.run.checkpoint(
            arrays,
            {
                "format": CHECKPOINT_FORMAT,
                "procedure": self.name,
                "epoch": int(meta["epoch"]),
                "trainer": meta,
                "extra": self.checkpoint_extra(),
            },
        )
        self._checkpoint_epoch = int(meta["epoch"])

    _checkpoint_epoch = 0

    # -- reports --------------------------------------------------------------------------------
    @classmethod
    def plot_report(cls, f: Any, figure: Any) -> None:
        """Accuracy against epochs and hardware queries, and each layer's loss."""
        from labpnn.reports import cost_scale, count_ticks

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
        count_ticks(ax.xaxis)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        ax = figure.add_subplot(2, 2, 2)
        if "queries" in col and evaluated.any():
            ax.plot(col["queries"][evaluated], col["test_accuracy"][evaluated], "o-", ms=3)
            cost_scale(ax, col["queries"][evaluated])
        ax.set(xlabel="hardware queries (incl. evaluation, twin data)", ylabel="test accuracy")
        ax.grid(alpha=0.3)
        ax = figure.add_subplot(2, 2, 3)
        losses = sorted(k for k in col if k.startswith("loss_layer")) or ["loss"]
        for name in losses:
            ax.plot(epoch, col[name], label=name)
        ax.set(xlabel="epoch", ylabel="loss")
        count_ticks(ax.xaxis)
        if all(np.nanmin(col[n]) > 0 for n in losses if np.isfinite(col[n]).any()):
            ax.set_yscale("log")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        ax = figure.add_subplot(2, 2, 4)
        if "digital_flops" in col and evaluated.any():
            ax.plot(col["digital_flops"][evaluated], col["test_accuracy"][evaluated], "o-", ms=3)
            cost_scale(ax, col["digital_flops"][evaluated])
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
            self.progress(
                getattr(self, "_epoch_now", 0), max(1, self.progress_total()), pause_here=False
            )

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
