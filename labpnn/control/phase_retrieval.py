"""SLM phase patterns that project a target intensity through a known transmission matrix.

The camera sees ``I = S · (g ⊙ |A·exp(iφ) + r|²)``: ``A`` is the observed TM on the camera
pixels, ``r`` a static field (the unmodulated reference border, if any), ``g`` a per-pixel
gain and ``S`` the binning of camera pixels into target pixels. The SLM is phase-only, so
the input field has unit modulus on every macropixel.

:func:`gerchberg_saxton` alternates between the two constraints (Gerchberg and Saxton
1972; through a TM as in Popoff et al. 2010): keep the output phase but impose the target
amplitude, then go back through the pseudo-inverse of ``A`` and keep only the input phase.
It stalls a little short of the best pattern for the model; :func:`refine_phases` climbs
the predicted Pearson fidelity directly by gradient ascent on the phases, which helps only
as far as the TM is right. A ridge on the back-projection (``regularization``, relative
to the mean power) keeps GS stable for a square TM and robust to a noisy measured one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ProjectionOptics", "gerchberg_saxton", "refine_phases", "project_targets"]


@dataclass
class ProjectionOptics:
    """What is known about the path from SLM to target pixels (see the module docstring)."""

    tm: np.ndarray  # complex [camera_pixels, macropixels]
    reference: np.ndarray | None = None  # complex [camera_pixels], static field
    gain: np.ndarray | None = None  # float [camera_pixels]
    pooling: np.ndarray | None = None  # float [target_pixels, camera_pixels]

    def __post_init__(self) -> None:
        self.tm = np.asarray(self.tm, dtype=np.complex128)
        if self.tm.ndim != 2:
            raise ValueError(f"the TM must be [camera pixels, macropixels], got {self.tm.shape}")
        n_cam = self.tm.shape[0]
        for name in ("reference", "gain"):
            value = getattr(self, name)
            if value is not None and np.shape(value) != (n_cam,):
                raise ValueError(f"{name} must have one value per camera pixel ({n_cam})")
        if self.pooling is not None and np.shape(self.pooling)[1] != n_cam:
            raise ValueError(f"pooling must be [target pixels, {n_cam} camera pixels]")

    @property
    def n_macropixels(self) -> int:
        return self.tm.shape[1]

    @property
    def n_targets_pixels(self) -> int:
        return self.tm.shape[0] if self.pooling is None else self.pooling.shape[0]

    def field(self, phases: np.ndarray) -> np.ndarray:
        out = np.exp(1j * np.asarray(phases)) @ self.tm.T
        return out if self.reference is None else out + self.reference

    def intensity(self, phases: np.ndarray) -> np.ndarray:
        """The target-pixel image ``[B, target_pixels]`` that these phases would project."""
        i = np.abs(self.field(phases)) ** 2
        if self.gain is not None:
            i = i * self.gain
        return i if self.pooling is None else i @ self.pooling.T


def gerchberg_saxton(
    optics: ProjectionOptics,
    targets: np.ndarray,
    iterations: int = 50,
    regularization: float = 0.05,
) -> np.ndarray:
    """Phases ``[B, macropixels]`` for flat targets ``[B, target_pixels]``, by GS iteration."""
    t = np.asarray(targets, dtype=np.float64)
    t = t / t.sum(axis=1, keepdims=True)
    pinv = _regularized_inverse(optics.tm, regularization)  # [N, P]
    gain = np.ones(optics.tm.shape[0]) if optics.gain is None else optics.gain
    pool = optics.pooling
    ref = 0.0 if optics.reference is None else optics.reference
    # Start from the target amplitude with a flat output phase, spread over each bin.
    per_pixel = t if pool is None else (t @ pool) / np.maximum(pool.sum(axis=0), 1e-12)
    field = np.sqrt(per_pixel / gain)
    phases = np.angle((field - ref) @ pinv.T)
    for _ in range(iterations):
        field = optics.field(phases)
        seen = np.abs(field) ** 2 * gain
        binned = seen if pool is None else seen @ pool.T
        total = binned.sum(axis=1, keepdims=True)
        ratio = np.sqrt(np.divide(t * total, binned, out=np.ones_like(binned), where=binned > 0))
        field = field * (ratio if pool is None else ratio @ pool)
        phases = np.angle((field - ref) @ pinv.T)
    return np.mod(phases, 2 * np.pi)


def _regularized_inverse(tm: np.ndarray, regularization: float) -> np.ndarray:
    """Tikhonov inverse ``Aᴴ(AAᴴ + λI)⁻¹`` (or ``(AᴴA + λI)⁻¹Aᴴ``), λ relative to the mean power.

    A plain pseudo-inverse of a square random TM is badly conditioned and sends GS astray;
    the small ridge keeps the back-projection stable without changing a well-posed one.
    """
    p, n = tm.shape
    if p <= n:
        gram = tm @ tm.conj().T
        lam = regularization * np.trace(gram).real / p
        return tm.conj().T @ np.linalg.inv(gram + lam * np.eye(p))
    gram = tm.conj().T @ tm
    lam = regularization * np.trace(gram).real / n
    return np.linalg.solve(gram + lam * np.eye(n), tm.conj().T)


def refine_phases(
    optics: ProjectionOptics,
    targets: np.ndarray,
    phases: np.ndarray,
    steps: int = 100,
    lr: float = 0.05,
) -> np.ndarray:
    """Climb the Pearson fidelity of the predicted image by Adam on the phases."""
    import torch

    from labpnn.control.metrics import torch_pearson

    if steps <= 0:
        return np.asarray(phases)
    tm_t = torch.as_tensor(optics.tm.T, dtype=torch.complex64)
    ref = (
        None
        if optics.reference is None
        else torch.as_tensor(optics.reference, dtype=torch.complex64)
    )
    gain = None if optics.gain is None else torch.as_tensor(optics.gain, dtype=torch.float32)
    pool = (
        None if optics.pooling is None else torch.as_tensor(optics.pooling.T, dtype=torch.float32)
    )
    target = torch.as_tensor(np.asarray(targets), dtype=torch.float32)
    phi = torch.tensor(np.asarray(phases), dtype=torch.float32, requires_grad=True)
    opt = torch.optim.Adam([phi], lr=lr)
    for _ in range(steps):
        field = torch.polar(torch.ones_like(phi), phi) @ tm_t
        if ref is not None:
            field = field + ref
        image = field.real**2 + field.imag**2
        if gain is not None:
            image = image * gain
        if pool is not None:
            image = image @ pool
        loss = (1.0 - torch_pearson(image, target)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return np.mod(phi.detach().numpy().astype(np.float64), 2 * np.pi)


def project_targets(
    optics: ProjectionOptics,
    targets: np.ndarray,
    iterations: int = 50,
    refine_steps: int = 100,
    regularization: float = 0.05,
    batch: int = 256,
) -> np.ndarray:
    """GS, then (optionally) Pearson refinement: phases ``[B, macropixels]`` per target.

    With an exact TM, refinement takes the predicted fidelity to ~1. With a measured TM it
    also fits the TM's errors, so on a real bench it can lower the measured fidelity:
    keep ``refine_steps`` small or 0 unless the TM is known to be accurate.
    """
    targets = np.asarray(targets, dtype=np.float64)
    out = []
    for start in range(0, len(targets), batch):
        chunk = targets[start : start + batch]
        phases = gerchberg_saxton(optics, chunk, iterations, regularization)
        out.append(refine_phases(optics, chunk, phases, refine_steps))
    return np.concatenate(out)
