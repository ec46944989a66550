"""How well a projected camera image reproduces its target: Pearson fidelity, MSE and PSNR.

Fidelity is the 2-D Pearson correlation between the projected intensity and the target
(Rahmani et al. 2020), so it ignores the camera's gain and exposure. MSE and PSNR compare
shapes too: the target is scaled to a peak of 1 and the projection by the least-squares
factor that best matches it, since the camera's units are arbitrary.

Shapes: ``[H, W]`` is one image and gives a float; ``[B, H, W]`` is a batch and gives
``[B]``; ``flat=True`` takes flat batches ``[B, P]`` (what the control loops hold).

A target whose pixels are all equal (blank or uniformly lit) has no Pearson correlation
with anything, so it is refused with :class:`TargetError` rather than scored.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "TargetError",
    "check_targets",
    "pearson_fidelity",
    "mse",
    "psnr",
    "summarize",
    "torch_pearson",
    "chance_fidelity",
]


class TargetError(ValueError):
    """A target image that cannot be projected or scored (empty, constant, wrong shape)."""


def _rows(images: np.ndarray, flat: bool) -> tuple[np.ndarray, bool]:
    """The images as float64 rows ``[B, P]``, and whether a single image was given."""
    arr = np.asarray(images, dtype=np.float64)
    if flat:
        if arr.ndim != 2:
            raise TargetError(f"flat=True expects [images, pixels], got shape {arr.shape}")
        return arr, False
    if arr.ndim == 2:
        return arr.reshape(1, -1), True
    if arr.ndim == 3:
        return arr.reshape(len(arr), -1), False
    raise TargetError(f"expected one image [H, W] or a batch [B, H, W], got shape {arr.shape}")


def check_targets(
    targets: np.ndarray, names: list[str] | None = None, flat: bool = False
) -> np.ndarray:
    """Return the targets unchanged (as float64); refuse empty, negative, NaN or constant ones."""
    arr = np.asarray(targets, dtype=np.float64)
    if arr.size == 0:
        raise TargetError("no target images were given (the target set is empty)")
    rows, _ = _rows(arr, flat)
    for i, row in enumerate(rows):
        label = names[i] if names and i < len(names) else f"target {i}"
        if not np.all(np.isfinite(row)):
            raise TargetError(f"{label} contains NaN or infinite pixels; fix the image")
        if np.any(row < 0):
            raise TargetError(f"{label} has negative pixels; an intensity target must be ≥ 0")
        if np.ptp(row) == 0:
            what = "blank (all zero)" if row[0] == 0 else "uniform"
            raise TargetError(
                f"{label} is {what}: its fidelity (a Pearson correlation) is undefined; "
                "give an image with some contrast"
            )
    return arr


def _pair(projected: np.ndarray, targets: np.ndarray, flat: bool):
    projected, targets = np.asarray(projected), np.asarray(targets)
    if projected.shape != targets.shape:
        raise TargetError(
            f"a projection of shape {projected.shape} cannot be compared with a target of "
            f"shape {targets.shape}"
        )
    t, single = _rows(check_targets(targets, flat=flat), flat)
    p, _ = _rows(projected, flat)
    return p, t, single


def pearson_fidelity(projected: np.ndarray, targets: np.ndarray, flat: bool = False):
    """Per-image 2-D Pearson correlation of projection and target.

    A constant target raises :class:`TargetError`; a constant projection (a dark or fully
    saturated frame) scores 0.
    """
    p, t, single = _pair(projected, targets, flat)
    t = t - t.mean(axis=1, keepdims=True)
    p = p - p.mean(axis=1, keepdims=True)
    denom = np.sqrt((p * p).sum(axis=1) * (t * t).sum(axis=1))
    r = np.divide((p * t).sum(axis=1), denom, out=np.zeros(len(t)), where=denom > 0)
    return float(r[0]) if single else r


def mse(projected: np.ndarray, targets: np.ndarray, flat: bool = False):
    """Per-image mean squared error, target at peak 1, projection least-squares scaled to it."""
    p, t, single = _pair(projected, targets, flat)
    t = t / t.max(axis=1, keepdims=True)
    pp = (p * p).sum(axis=1, keepdims=True)
    scale = np.divide((p * t).sum(axis=1, keepdims=True), pp, out=np.zeros_like(pp), where=pp > 0)
    err = ((p * scale - t) ** 2).mean(axis=1)
    return float(err[0]) if single else err


def psnr(projected: np.ndarray, targets: np.ndarray, flat: bool = False):
    """Per-image peak signal-to-noise ratio in dB, with the target's peak as 1."""
    err = np.maximum(np.asarray(mse(projected, targets, flat)), 1e-12)
    out = 10.0 * np.log10(1.0 / err)
    return float(out) if np.ndim(out) == 0 else out


def summarize(fidelity: np.ndarray) -> dict[str, float]:
    """Mean, spread and tails of per-target fidelities, for result rows and ``/summary``."""
    f = np.asarray(fidelity, dtype=np.float64).ravel()
    return {
        "fidelity": float(f.mean()),
        "fidelity_std": float(f.std()),
        "fidelity_median": float(np.median(f)),
        "fidelity_p10": float(np.percentile(f, 10)),
    }


def chance_fidelity(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Fidelity of every image ``[M, P]`` against every target ``[T, P]``: ``[M·T]``.

    With images measured for random SLM patterns this is the chance level a control
    run's fidelity has to be judged against (about 0 ± 1/√P for developed speckle).
    """
    images = np.nan_to_num(np.asarray(images, dtype=np.float64), nan=0.0, posinf=0.0)
    targets = np.asarray(targets, dtype=np.float64)
    m, t = len(images), len(targets)
    return pearson_fidelity(np.repeat(images, t, axis=0), np.tile(targets, (m, 1)), flat=True)


def torch_pearson(predicted, targets):
    """Per-row Pearson of two ``[B, P]`` tensors; differentiable, for training losses."""
    p = predicted - predicted.mean(dim=1, keepdim=True)
    t = targets - targets.mean(dim=1, keepdim=True)
    return (p * t).sum(dim=1) / ((p * p).sum(dim=1) * (t * t).sum(dim=1) + 1e-20).sqrt()
