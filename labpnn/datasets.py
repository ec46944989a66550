"""The classification tasks of the PNN papers, laid out for label-embedding training.

Every data set's inputs are laid out ``[label slots | features]``. The label slots are zero here;
trainers that embed labels (PhyLL, forward-forward) write into them with :func:`embed_labels`,
and trainers that do not (PAT) see constant zeros there.

- :func:`vowels`: Hillenbrand et al. 1995, women speakers, 7 vowels, 12 formant features.
  Read from a CSV when one is given; otherwise a synthetic stand-in drawn from the published
  per-vowel formant means and standard deviations, so the library works without the file.
- :func:`digits`: scikit-learn's bundled 8x8 digits (offline), the stand-in for MNIST.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = ["Dataset", "vowels", "digits", "embed_labels", "VOWELS", "FORMANT_FEATURES"]

VOWELS = ("ae", "ah", "aw", "er", "ih", "iy", "uw")
FORMANT_FEATURES = (
    "F1steady_state", "F2steady_state", "F3steady_state",
    "F120%", "F220%", "F320%",
    "F150%", "F250%", "F350%",
    "F180%", "F280%", "F380%",
)  # fmt: skip
VOWELS_CSV_ENV = "LABPNN_VOWELS_CSV"
VOWEL_LABEL_SLOTS = 8

# Per-vowel formant statistics in Hz (mean and sample std over the 258 women's tokens of
# Hillenbrand et al. 1995, feature order as FORMANT_FEATURES), and the token count per vowel.
# They parametrise the synthetic stand-in used when no CSV is given.
VOWEL_FORMANT_MEANS_HZ = (
    (661.5, 2362.5, 2978.9, 663.7, 2358.6, 2966.2, 744.8, 2158.8, 2903.7, 796.6, 1942.6, 2896.2),
    (945.5, 1525.7, 2826.5, 954.8, 1521.6, 2832.0, 945.2, 1560.6, 2833.3, 871.3, 1743.6, 2860.2),
    (781.6, 1166.3, 2816.2, 780.6, 1156.7, 2825.5, 800.4, 1236.3, 2822.8, 802.6, 1556.1, 2826.2),
    (526.8, 1593.5, 1929.2, 538.3, 1587.7, 1956.7, 513.2, 1601.4, 1937.5, 496.7, 1700.6, 2011.1),
    (486.3, 2317.8, 3029.0, 484.3, 2328.5, 3023.0, 523.1, 2230.4, 3010.2, 532.9, 2136.8, 3039.7),
    (435.8, 2784.5, 3380.7, 441.1, 2780.6, 3393.1, 434.4, 2790.4, 3374.8, 431.6, 2782.0, 3313.9),
    (462.1, 1033.8, 2721.9, 467.1, 1072.5, 2723.1, 459.5, 1036.6, 2732.6, 453.3, 1085.0, 2742.6),
)
VOWEL_FORMANT_STDS_HZ = (
    (47.2, 126.6, 189.8, 45.3, 121.4, 182.7, 55.4, 147.4, 191.5, 67.0, 104.9, 188.1),
    (77.9, 117.9, 156.2, 73.9, 129.8, 174.6, 70.9, 115.7, 167.0, 69.9, 120.2, 161.4),
    (50.0, 105.4, 179.6, 56.8, 109.7, 196.0, 52.0, 115.3, 173.5, 59.6, 143.4, 161.2),
    (48.0, 112.2, 136.4, 50.1, 106.1, 152.8, 46.3, 110.2, 138.3, 44.8, 117.7, 132.2),
    (32.6, 115.2, 186.0, 32.4, 121.1, 174.7, 40.9, 113.4, 193.2, 38.4, 128.2, 197.4),
    (41.0, 121.4, 242.5, 41.6, 141.4, 246.8, 40.8, 116.5, 256.0, 46.8, 124.9, 254.7),
    (38.7, 102.1, 152.6, 39.8, 109.7, 150.6, 41.8, 92.0, 151.3, 45.1, 101.4, 158.3),
)
VOWEL_TOKEN_COUNTS = (37, 37, 37, 37, 37, 37, 36)
# The synthetic formants are one fixed draw (like the real recordings); `seed` only moves the split.
SYNTHETIC_VOWELS_SEED = 1995


@dataclass(frozen=True)
class Dataset:
    """A train/test split with inputs laid out ``[label slots | features]`` (slots zero)."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    n_classes: int
    n_label_slots: int
    n_features: int
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        width = self.n_label_slots + self.n_features
        for name in ("x_train", "x_test"):
            x = getattr(self, name)
            if x.ndim != 2 or x.shape[1] != width:
                raise ValueError(f"{name} has shape {tuple(x.shape)}, expected [N, {width}]")
        if self.n_label_slots < self.n_classes:
            raise ValueError(
                f"{self.n_classes} classes need at least as many label slots, got {self.n_label_slots}"
            )

    @property
    def n_inputs(self) -> int:
        """Width of one input row: label slots plus features."""
        return self.n_label_slots + self.n_features


def embed_labels(
    x: Tensor, y: Tensor | int, n_label_slots: int, value: Tensor | None = None
) -> Tensor:
    """Return a copy of ``x`` whose label slots are zero except slot ``y``.

    Slot ``y`` gets ``value`` or, by default, the largest feature magnitude of each sample
    (max|x| over the row after the slots are cleared), so the label is as loud as the loudest
    feature whatever the input scale.
    """
    embedded = x.clone()
    embedded[:, :n_label_slots] = 0.0
    labels = torch.as_tensor(y, dtype=torch.long).expand(x.shape[0])
    if value is None:
        value = embedded.abs().amax(dim=1)
    embedded[torch.arange(x.shape[0]), labels] = torch.as_tensor(value, dtype=x.dtype)
    return embedded


def vowels(seed: int = 0, path: str | os.PathLike | None = None) -> Dataset:
    """The 7-vowel task: 8 label slots (7 used) + 12 formants = 20 inputs, stratified 80/20 split.

    The CSV (columns ``speaker, vowel, F1steady_state, ...``) comes from ``path``, else from the
    ``LABPNN_VOWELS_CSV`` environment variable; with neither, a synthetic set drawn from the
    published per-vowel means and stds is used and ``meta["source"] == "synthetic"``.
    Preprocessing as in the paper: z-score each feature over the whole set, then shift by the
    global minimum so that every feature is >= 0.
    """
    if path is None:
        path = os.environ.get(VOWELS_CSV_ENV) or None
    if path is None:
        formants_hz, labels = _synthetic_vowels()
        meta = {"source": "synthetic", "synthetic_seed": SYNTHETIC_VOWELS_SEED}
    else:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(
                f"vowel CSV not found at {path}. Put the Hillenbrand women 7-vowel CSV "
                f"(columns speaker,vowel,F1steady_state,...) there, or point {VOWELS_CSV_ENV} at it; "
                "call vowels() without a path (and without the variable) to use the built-in "
                "synthetic vowels instead."
            )
        formants_hz, labels = _read_vowels_csv(path)
        meta = {"source": "hillenbrand-csv", "path": str(path)}

    features = (formants_hz - formants_hz.mean(axis=0)) / formants_hz.std(axis=0)
    features = features - features.min()
    meta.update(classes=list(VOWELS), feature_names=list(FORMANT_FEATURES))
    return _split(features, labels, len(VOWELS), VOWEL_LABEL_SLOTS, seed, meta)


def digits(seed: int = 0, n_label_slots: int = 10) -> Dataset:
    """scikit-learn's 8x8 digits scaled to 0..1: 10 label slots + 64 pixels, stratified 80/20 split."""
    from sklearn.datasets import load_digits

    pixels, labels = load_digits(return_X_y=True)
    meta = {"source": "sklearn-digits", "classes": list(range(10))}
    return _split(pixels / 16.0, labels, 10, n_label_slots, seed, meta)


def _read_vowels_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    missing = [name for name in ("vowel", *FORMANT_FEATURES) if rows and name not in rows[0]]
    if not rows or missing:
        raise ValueError(
            f"{path} is not the vowel CSV: missing columns {missing or 'all (empty file)'}"
        )
    unknown = sorted({row["vowel"] for row in rows} - set(VOWELS))
    if unknown:
        raise ValueError(f"{path} has vowels {unknown}; expected only {list(VOWELS)}")
    formants = np.array([[float(row[name]) for name in FORMANT_FEATURES] for row in rows])
    labels = np.array([VOWELS.index(row["vowel"]) for row in rows])
    return formants, labels


def _synthetic_vowels() -> tuple[np.ndarray, np.ndarray]:
    """Independent Gaussian formants per vowel from the published means and stds (258 tokens)."""
    rng = np.random.default_rng(SYNTHETIC_VOWELS_SEED)
    means = np.array(VOWEL_FORMANT_MEANS_HZ)
    stds = np.array(VOWEL_FORMANT_STDS_HZ)
    labels = np.repeat(np.arange(len(VOWELS)), VOWEL_TOKEN_COUNTS)
    formants = means[labels] + stds[labels] * rng.standard_normal((len(labels), means.shape[1]))
    return formants, labels


def _split(
    features: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    n_label_slots: int,
    seed: int,
    meta: dict,
) -> Dataset:
    """Seeded stratified 80/20 split, with zero label slots prepended."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(
        np.arange(len(labels)), test_size=0.2, stratify=labels, random_state=seed
    )
    inputs = np.concatenate([np.zeros((len(labels), n_label_slots)), features], axis=1)
    x = torch.as_tensor(inputs, dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.int64)
    meta = {**meta, "seed": seed, "split": "stratified 80/20"}
    return Dataset(
        x_train=x[train],
        y_train=y[train],
        x_test=x[test],
        y_test=y[test],
        n_classes=n_classes,
        n_label_slots=n_label_slots,
        n_features=features.shape[1],
        meta=meta,
    )
