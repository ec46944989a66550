"""The one interface every labpnn training algorithm implements, and its shared machinery.

A procedure drives any trainer the same way: ``fit`` (or ``step_epoch`` epoch by epoch),
``evaluate``/``predict``, ``costs``, and ``checkpoint_state``/``restore_state`` to survive a crash.
Checkpoints are named numpy arrays plus JSON metadata (no pickle) and capture the digital models,
the optimiser moments, every random generator, the epoch, the counters and the history, so that a
restored trainer continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import copy
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from labpnn.datasets import Dataset
from labpnn.learning.checkpoint import join_state, split_state
from labpnn.learning.costs import Costs, measure

__all__ = ["Trainer", "TrainingDiverged", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "labpnn-trainer-checkpoint/1"


class TrainingDiverged(RuntimeError):
    """The loss became NaN/Inf or exceeded the divergence bound; the weights were not updated.

    A procedure should stop the run as failed and keep its last good checkpoint.
    """

    def __init__(self, epoch: int, loss: float, bound: float) -> None:
        super().__init__(
            f"training diverged in epoch {epoch + 1}: loss {loss} is not finite or exceeds "
            f"divergence_bound={bound:g}; the weights were not updated with it"
        )
        self.epoch = epoch
        self.loss = loss
        self.bound = bound


class BadFrame(RuntimeError):
    """A physical layer returned NaN or Inf during training: the batch is skipped."""


class Trainer(ABC):
    """Base class of all trainers: the epoch loop, evaluation, cost ledger and checkpoints.

    Subclasses implement :meth:`_train_epoch`, :meth:`predict` and :meth:`_stateful`, and set
    ``self.n_inputs`` (the width of the dataset rows they accept).
    """

    n_inputs: int
    # where n_inputs came from, and how to change it, for the width error (a subclass may say)
    _input_width_origin = (
        "its first layer's n_in",
        "build the first physical layer with n_in equal to the dataset's n_inputs",
    )

    def __init__(self, *, seed: int, divergence_bound: float) -> None:
        self.seed = int(seed)
        self.divergence_bound = float(divergence_bound)
        self.generator = torch.Generator().manual_seed(self.seed)
        self.epoch = 0
        self.history: list[dict] = []
        self._costs = Costs()

    # ---- what subclasses provide -------------------------------------------------------------
    @abstractmethod
    def _train_epoch(self, ds: Dataset) -> dict:
        """One pass over ``ds.x_train``; return this epoch's losses (e.g. ``loss``, ``layer_losses``)."""

    @abstractmethod
    def predict(self, x: Tensor) -> Tensor:
        """Predicted class per row of ``x``; -1 where a physical measurement was not finite."""

    @abstractmethod
    def _stateful(self) -> dict[str, Any]:
        """Modules and optimisers (anything with ``state_dict``/``load_state_dict``) to checkpoint."""

    def _physical_layers(self) -> list:
        """Physical layers whose optional ``state_dict`` is checkpointed with the trainer."""
        return []

    def _config(self) -> dict:
        """Hyper-parameters recorded in checkpoints (JSON values)."""
        return {"seed": self.seed, "divergence_bound": self.divergence_bound}

    # ---- the public interface ----------------------------------------------------------------
    def fit(
        self,
        ds: Dataset,
        epochs: int,
        callback: Callable[[dict], bool | None] | None = None,
        eval_every: int = 1,
    ) -> list[dict]:
        """Train for ``epochs`` more epochs and return the whole history (one dict per epoch).

        Train and test accuracy are measured every ``eval_every`` epochs and after the last one
        (``None`` in the other epochs). Evaluation queries are counted in ``costs.eval_queries``.
        ``callback(record)`` is called after each epoch; returning ``False`` stops training, which
        is how a procedure honours an abort request.
        """
        if epochs < 0 or eval_every < 1:
            raise ValueError(f"need epochs >= 0 and eval_every >= 1, got {epochs}, {eval_every}")
        ds = training_data(ds)
        skipped_before = self._costs.skipped_batches
        for done in range(1, epochs + 1):
            due = (self.epoch + 1) % eval_every == 0 or done == epochs
            record = self.step_epoch(ds, evaluate=due)
            if callback is not None and callback(record) is False:
                break
        skipped = self._costs.skipped_batches - skipped_before
        if skipped:
            warnings.warn(
                f"{type(self).__name__}: {skipped} training batch(es) skipped because a physical "
                "layer returned NaN/Inf (costs.skipped_batches); a batch with one bad row is "
                "skipped whole, so with full-batch training (batch_size=None) one bad row skips "
                "an epoch: use a smaller batch_size on a layer that drops frames",
                RuntimeWarning,
                stacklevel=2,
            )
        return list(self.history)

    def step_epoch(self, ds: Dataset, evaluate: bool = True) -> dict:
        """Train one epoch, optionally measure accuracies, append the record to the history.

        This is the hook for procedures that drive training epoch by epoch (checkpointing,
        drift schedules); :meth:`fit` is a loop over it.
        """
        ds = training_data(ds)
        if ds.x_train.shape[0] == 0:
            raise ValueError(
                f"{type(self).__name__} got no training rows (x_train has shape "
                f"{tuple(ds.x_train.shape)}); give it a data set with at least one training sample"
            )
        self._check_width(ds.x_train)
        check_finite(ds.x_train, "x_train")
        check_finite(ds.x_test, "x_test")
        self._check_labels(ds)
        losses = self._train_epoch(ds)
        self.epoch += 1
        record = {"epoch": self.epoch, "train_accuracy": None, "test_accuracy": None, **losses}
        if evaluate:
            record["train_accuracy"] = self.evaluate(ds.x_train, ds.y_train)
            record["test_accuracy"] = self.evaluate(ds.x_test, ds.y_test)
        record.update(self._costs.as_dict())
        self.history.append(record)
        return record

    def evaluate(self, x: Tensor, y: Tensor) -> float:
        """Fraction (0..1) of rows of ``x`` classified as ``y`` (one label per row; a column of
        labels is fine)."""
        return self.score(x, y)[0]

    def score(self, x: Tensor, y: Tensor) -> tuple[float, int]:
        """``(accuracy, rows whose measurement was not finite)``; such rows count as wrong."""
        labels = as_labels(y, "y")
        if labels.shape[0] != len(x):
            raise ValueError(f"{len(x)} rows of x but {labels.shape[0]} labels")
        self._check_label_range(labels, "labels y")
        x = self._check_width(x)
        check_finite(x, "x")
        predicted = self.predict(x)
        accuracy = (predicted == labels).float().mean().item()
        return accuracy, int((predicted == -1).sum().item())

    @property
    def costs(self) -> Costs:
        """A copy of the running cost totals (queries, hardware_s, digital_flops, skipped_batches...)."""
        return copy.copy(self._costs)

    def checkpoint_state(self) -> tuple[dict[str, np.ndarray], dict]:
        """Everything needed to continue bit-identically: ``(arrays, JSON-serialisable meta)``."""
        state = {
            "stateful": {name: obj.state_dict() for name, obj in self._stateful().items()},
            "generators": {"train": self.generator.get_state()},
            "physical": {
                str(index): layer.state_dict()
                for index, layer in enumerate(self._physical_layers())
                if _has_state(layer)
            },
        }
        arrays, skeleton = split_state(state, "state")
        meta = {
            "format": CHECKPOINT_FORMAT,
            "trainer": type(self).__name__,
            "config": self._config(),
            "epoch": self.epoch,
            "costs": self._costs.as_dict(),
            "history": copy.deepcopy(self.history),
            "state": skeleton,
        }
        return arrays, meta

    def restore_state(self, arrays: dict[str, np.ndarray], meta: dict) -> None:
        """Load a checkpoint made by :meth:`checkpoint_state` of a trainer built the same way."""
        if meta.get("format") != CHECKPOINT_FORMAT or meta.get("trainer") != type(self).__name__:
            raise ValueError(
                f"checkpoint is {meta.get('trainer')!r} ({meta.get('format')!r}); this trainer is "
                f"{type(self).__name__!r} ({CHECKPOINT_FORMAT!r})"
            )
        saved_config, config = self._comparable_config(meta.get("config", {})), self._config()
        changed = [
            f"{key}: checkpoint {saved_config[key]!r}, this trainer {config[key]!r}"
            for key in config
            if key not in RESTORE_MAY_DIFFER and key in saved_config
            and _json_value(saved_config[key]) != _json_value(config[key])
        ]  # fmt: skip
        if changed:
            raise ValueError(
                f"the checkpoint was made by a {type(self).__name__} built differently; build it "
                "as the checkpoint says to continue it (" + "; ".join(changed) + ")"
            )
        state = join_state(meta["state"], arrays)
        for name, obj in self._stateful().items():
            saved = state["stateful"][name]
            if isinstance(obj, torch.optim.Optimizer):
                # JSON turns the integer parameter ids of the optimiser state into strings.
                saved["state"] = {int(key): value for key, value in saved["state"].items()}
            obj.load_state_dict(saved)
        self.generator.set_state(state["generators"]["train"])
        for index, layer in enumerate(self._physical_layers()):
            if str(index) in state["physical"]:
                layer.load_state_dict(state["physical"][str(index)])
        self.seed = int(meta["config"]["seed"])
        self.epoch = int(meta["epoch"])
        self._costs = Costs(**meta["costs"])
        self.history = copy.deepcopy(meta["history"])

    def _comparable_config(self, saved: dict) -> dict:
        """A checkpoint's config in today's terms: what older versions spelt differently or
        did not record (a subclass adds its own)."""
        saved = dict(saved)
        if "batch_size" in saved:
            saved["batch_size"] = self._batch_size(saved["batch_size"])  # 0 and None: full batch
        return saved

    # ---- helpers for subclasses ---------------------------------------------------------------
    def _check_labels(self, ds: Dataset) -> None:
        """Refuse training or test labels outside ``0..n_classes-1`` with a message, not an
        index error (in training) or a silent 0 % (in testing)."""
        self._check_label_range(torch.as_tensor(ds.y_train), "training labels")
        self._check_label_range(torch.as_tensor(ds.y_test), "test labels")

    def _check_label_range(self, y: Tensor, what: str) -> None:
        n_classes = getattr(self, "n_classes", None)
        if n_classes is not None and y.numel() and (int(y.min()) < 0 or int(y.max()) >= n_classes):
            raise ValueError(
                f"labels must lie in 0..{n_classes - 1} (n_classes={n_classes}); "
                f"the {what} span {int(y.min())}..{int(y.max())}"
            )

    def _check_width(self, x: Tensor) -> Tensor:
        """``x`` as a float32 tensor (numpy arrays welcome), after checking its width."""
        x = torch.as_tensor(x, dtype=torch.float32)
        if x.ndim != 2 or x.shape[1] != self.n_inputs:
            origin, remedy = self._input_width_origin
            raise ValueError(
                f"{type(self).__name__} was built for inputs of width {self.n_inputs} "
                f"({origin}), but the data have shape {tuple(x.shape)}; {remedy}"
            )
        return x

    def _measure(self, layer, x: Tensor, *, evaluation: bool = False) -> Tensor:
        """Query a physical layer through the cost ledger (see :func:`costs.measure`).

        In training a non-finite frame raises :class:`BadFrame`, which :meth:`_run_batch` turns
        into a skipped batch; in evaluation it is returned and becomes a -1 prediction.
        """
        y = measure(layer, x, self._costs, evaluation=evaluation)
        if not evaluation and not torch.isfinite(y).all():
            raise BadFrame(f"physical layer {layer!r} returned a non-finite frame")
        return y

    def _evaluation_chunks(self, n_samples: int, rows_per_sample: int = 1) -> list[slice]:
        """Sample ranges for evaluation calls: ``batch_size`` samples each, or about
        ``EVALUATION_ROWS`` rows each when training is full-batch, so that scoring a large test
        set never sends it to a physical layer in one call."""
        per_call = getattr(self, "batch_size", None) or max(1, EVALUATION_ROWS // rows_per_sample)
        return [slice(start, start + per_call) for start in range(0, n_samples, per_call)]

    @staticmethod
    def _batch_size(batch_size: int | None) -> int | None:
        """``batch_size`` checked: a positive integer, or None (or 0) for the full batch."""
        if batch_size is None or batch_size == 0:
            return None
        if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(
                f"batch_size must be a positive integer or None (full batch), got {batch_size!r}"
            )
        return int(batch_size)

    def _batches(self, n_samples: int, batch_size: int | None) -> Iterator[Tensor]:
        """Index batches: the whole set in order when ``batch_size`` is None, else shuffled."""
        if batch_size is None or batch_size >= n_samples:
            yield torch.arange(n_samples)
            return
        order = torch.randperm(n_samples, generator=self.generator)
        yield from order.split(batch_size)

    def _run_batch(self, train_batch: Callable[[], None]) -> None:
        """Run one batch's update; a bad physical frame skips the batch and is counted."""
        try:
            train_batch()
        except BadFrame:
            self._costs.skipped_batches += 1

    def _check_loss(self, loss: Tensor) -> float:
        """Return the loss as a float, or raise :class:`TrainingDiverged` before any update."""
        value = loss.item()
        if not np.isfinite(value) or value > self.divergence_bound:
            raise TrainingDiverged(self.epoch, value, self.divergence_bound)
        return value


# Rows per physical-layer call in evaluation when a trainer trains full-batch (batch_size=None).
EVALUATION_ROWS = 1024

# What a restored trainer may do differently from the one that made the checkpoint: the seed is
# taken from the checkpoint (its generators are restored), the layers' descriptions include state
# that the checkpoint restores, and the divergence bound is a safety setting, not the model.
RESTORE_MAY_DIFFER = frozenset({"seed", "layers", "divergence_bound"})


def _json_value(value: Any) -> Any:
    """Configs compared as they are stored in checkpoints (JSON: tuples become lists)."""
    import json

    return json.loads(json.dumps(value, default=str))


def as_labels(y: Any, name: str) -> Tensor:
    """Class labels as an int64 vector: numpy, lists and ``[N, 1]`` columns are welcome;
    non-integer values are refused rather than truncated."""
    labels = torch.as_tensor(np.asarray(y) if not isinstance(y, Tensor) else y)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(f"{name} must hold one label per row, got shape {tuple(labels.shape)}")
    if labels.is_floating_point():
        if not torch.equal(labels, labels.round()):
            raise ValueError(f"{name} holds non-integer labels; labels are class numbers 0..C-1")
    elif labels.dtype == torch.bool or labels.is_complex():
        raise ValueError(f"{name} must hold integer class labels, got {labels.dtype}")
    return labels.to(torch.int64)


def training_data(ds: Any) -> Any:
    """``ds`` with float32 inputs and int64 labels (numpy, float64 and lists welcome).

    A :class:`Dataset` that already has them is returned as it is; anything else with the
    attributes ``x_train, y_train, x_test, y_test`` (and optionally ``n_classes``,
    ``n_label_slots``) becomes a lightweight copy with converted arrays.
    """
    fields = ("x_train", "y_train", "x_test", "y_test")
    missing = [name for name in fields if not hasattr(ds, name)]
    if missing:
        raise TypeError(
            f"training data need attributes {', '.join(fields)} (labpnn.datasets.Dataset); "
            f"{type(ds).__name__} lacks {', '.join(missing)}"
        )
    ready = all(
        isinstance(getattr(ds, name), Tensor)
        and getattr(ds, name).dtype == (torch.float32 if name.startswith("x") else torch.int64)
        and getattr(ds, name).ndim == (2 if name.startswith("x") else 1)
        for name in fields
    )
    if ready:
        return ds
    converted = {}
    for split in ("train", "test"):
        x = getattr(ds, f"x_{split}")
        x = x if isinstance(x, Tensor) else torch.from_numpy(np.asarray(x, dtype=np.float32))
        x = x.to(torch.float32)
        y = as_labels(getattr(ds, f"y_{split}"), f"y_{split}")
        if x.ndim != 2 or x.shape[0] != y.shape[0]:
            raise ValueError(
                f"x_{split} must be [N, n_inputs] with one label per row; got x_{split} "
                f"{tuple(x.shape)} and {y.shape[0]} labels"
            )
        converted[f"x_{split}"], converted[f"y_{split}"] = x, y
    extra = {name: getattr(ds, name) for name in ("n_classes", "n_label_slots", "n_features", "meta")
             if hasattr(ds, name)}  # fmt: skip
    return SimpleNamespace(**converted, **extra)


def check_finite(x: Tensor, name: str) -> None:
    """Refuse inputs holding NaN or Inf, naming the rows: bad data are not a bad hardware frame
    (which the trainers skip and count), and would otherwise be blamed on the instrument."""
    bad = (~torch.isfinite(x)).reshape(x.shape[0], -1).any(dim=1).nonzero().flatten().tolist()
    if bad:
        shown = ", ".join(str(row) for row in bad[:10]) + (", ..." if len(bad) > 10 else "")
        raise ValueError(
            f"{name} holds NaN or Inf in {len(bad)} row(s) ({shown}); the data must be finite: "
            "drop or fill those rows before training"
        )


def predicted_classes(scores: Tensor) -> Tensor:
    """Argmax per row, or -1 for rows with any non-finite score (a bad measurement)."""
    classes = scores.argmax(dim=1)
    classes[~torch.isfinite(scores).all(dim=1)] = -1
    return classes


def mean_or_none(values: list[float]) -> float | None:
    """Mean of a list, or None when every batch of the epoch was skipped."""
    return float(np.mean(values)) if values else None


def _has_state(layer) -> bool:
    return callable(getattr(layer, "state_dict", None)) and callable(
        getattr(layer, "load_state_dict", None)
    )
