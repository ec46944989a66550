"""The classification task of a training run, fitted to the bench's input range and width.

The data sets (:mod:`labpnn.datasets`) lay inputs out as ``[label slots | features]`` with
non-negative features. A bench encodes its inputs into its own range (tone amplitudes clip to
0..1, metasurface bits quantise 0..1, SLM phases wrap with period 1), so the procedures scale
every row by one number, ``input_range / max(x_train)``, and zero-pad the features up to the
first physical layer's ``n_in``. Both are recorded in the run's metadata.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from labpnn.datasets import VOWELS_CSV_ENV, Dataset, digits, vowels
from labpnn.errors import BadInput

__all__ = ["DATASETS", "load_task", "fit_task", "nominal_sizes"]

DATASETS = ("vowels", "digits")
# Training / test rows of each task (stratified 80/20), for estimates before any data is read.
NOMINAL_SIZES = {"vowels": (206, 52, 7, 20), "digits": (1437, 360, 10, 74)}


def nominal_sizes(dataset: str) -> tuple[int, int, int, int]:
    """``(n_train, n_test, n_classes, n_inputs)`` of a task, without loading it."""
    return NOMINAL_SIZES[dataset]


def load_task(dataset: str, seed: int, path: str = "") -> Dataset:
    """The task's split for ``seed``; a missing vowel CSV is a :class:`BadInput` that says what to do.

    ``path`` (or ``LABPNN_VOWELS_CSV``) names the Hillenbrand CSV; with neither, the synthetic
    vowels drawn from the published formant statistics are used (``meta["source"]``).
    """
    if dataset not in DATASETS:
        raise BadInput(f"dataset={dataset!r} is not one of {', '.join(DATASETS)}")
    if dataset == "digits":
        if path:
            raise BadInput(
                "dataset_path is only for the vowel CSV; the digits come with scikit-learn. "
                "Leave dataset_path empty"
            )
        return digits(seed=seed)
    source = "dataset_path" if path else VOWELS_CSV_ENV
    path = path or os.environ.get(VOWELS_CSV_ENV, "")
    if path and not Path(path).is_file():
        raise BadInput(
            f"vowel CSV not found at {path} (from {source}). Put the Hillenbrand women 7-vowel "
            f"CSV (columns speaker,vowel,F1steady_state,...) there, point --set dataset_path=... "
            f"or {VOWELS_CSV_ENV} at it, or leave both empty to train on the built-in synthetic "
            "vowels (drawn from the published formant means and standard deviations)"
        )
    try:
        return vowels(seed=seed, path=path or None)
    except ValueError as exc:
        raise BadInput(f"cannot use the vowel CSV {path}: {exc}") from None


def fit_task(ds: Dataset, n_in: int, input_range: float) -> tuple[Dataset, dict[str, Any]]:
    """Scale ``ds`` so its training maximum is ``input_range`` and zero-pad rows to ``n_in``.

    Returns the fitted data set and what was done (for the run file). A data set wider than
    ``n_in`` cannot be sent to the bench and is refused with a :class:`BadInput`.
    """
    width = ds.n_inputs
    if width > n_in:
        raise BadInput(
            f"the {ds.meta.get('source', 'data')} rows have {width} inputs "
            f"({ds.n_label_slots} label slots + {ds.n_features} features) but the first "
            f"physical layer takes {n_in}; choose a bench layout with at least {width} inputs"
        )
    if input_range <= 0:
        raise BadInput(f"input_range={input_range} must be > 0")
    peak = float(ds.x_train.abs().max())
    scale = input_range / peak if peak > 0 else 1.0
    pad = n_in - width

    def fit(x: torch.Tensor) -> torch.Tensor:
        x = x * scale
        return torch.cat([x, torch.zeros(x.shape[0], pad)], dim=1) if pad else x

    fitted = Dataset(
        x_train=fit(ds.x_train),
        y_train=ds.y_train,
        x_test=fit(ds.x_test),
        y_test=ds.y_test,
        n_classes=ds.n_classes,
        n_label_slots=ds.n_label_slots,
        n_features=ds.n_features + pad,
        meta=dict(ds.meta),
    )
    record = {
        **{k: v for k, v in ds.meta.items() if k != "feature_names"},
        "n_train": int(ds.x_train.shape[0]),
        "n_test": int(ds.x_test.shape[0]),
        "n_classes": ds.n_classes,
        "n_label_slots": ds.n_label_slots,
        "n_features": ds.n_features,
        "input_scale": scale,
        "input_range": input_range,
        "zero_padding": pad,
    }
    return fitted, record
