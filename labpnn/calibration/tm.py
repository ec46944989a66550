"""Transmission-matrix maths: Hadamard phase stepping, reconstruction, focusing.

Popoff et al. (2010): with a static reference field ``s`` on the camera, displaying
Hadamard vector ``h_k`` (phases 0/π) shifted by a global phase α gives
``I_α = |s + e^{iα} T h_k|²``, so

    (I_0 − I_π)/4 + i (I_{3π/2} − I_{π/2})/4 = conj(s) ⊙ (T h_k).

Stacking the columns and undoing the Hadamard basis (``H Hᵀ = N``) gives the
*observed* TM ``diag(conj(s))·T``: exactly what phase conjugation needs, since the
unknown reference phase is common to a camera pixel's whole row.
"""

from __future__ import annotations

import numpy as np

PHASE_STEPS = np.array([0.0, 0.5, 1.0, 1.5]) * np.pi


def hadamard(n: int) -> np.ndarray:
    """Sylvester Hadamard matrix of order ``n`` (a power of two), entries ±1."""
    if n < 1 or n & (n - 1):
        raise ValueError(f"a Hadamard basis needs a power-of-two size, got {n}")
    h = np.ones((1, 1), dtype=np.int8)
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def basis_phases(n: int) -> np.ndarray:
    """Phase patterns [n_basis × n_steps, n]: Hadamard vector k plus global step α."""
    h = hadamard(n)
    base = np.where(h > 0, 0.0, np.pi)  # row k = basis vector k
    return (base[:, None, :] + PHASE_STEPS[None, :, None]).reshape(-1, n)


def reconstruct(intensities: np.ndarray, n: int) -> np.ndarray:
    """Observed TM [pixels, n] from intensities [n × 4, pixels] taken in basis order."""
    steps = np.asarray(intensities, dtype=np.float64).reshape(n, len(PHASE_STEPS), -1)
    i0, i1, i2, i3 = (steps[:, s, :] for s in range(4))
    in_basis = ((i0 - i2) + 1j * (i3 - i1)) / 4.0  # [n, pixels]: conj(s) ⊙ T h_k
    return (hadamard(n).T.astype(np.float64) @ in_basis).T / n


def column_pearson(measured: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """|complex Pearson| between matching columns of two TMs (1 = identical up to scale)."""
    a = measured - measured.mean(axis=0)
    b = truth - truth.mean(axis=0)
    num = np.abs(np.sum(a * np.conj(b), axis=0))
    den = np.linalg.norm(a, axis=0) * np.linalg.norm(b, axis=0)
    return num / np.where(den == 0, np.inf, den)


def focus_phases(tm: np.ndarray, pixel: int) -> np.ndarray:
    """Phase-only conjugation: SLM phases that add every mode in phase at ``pixel``."""
    return np.mod(-np.angle(tm[pixel]), 2 * np.pi)


def theory_enhancement(n: int) -> float:
    """Ideal phase-only focusing enhancement, (π/4)(N−1)+1 (Vellekoop & Mosk)."""
    return np.pi / 4 * (n - 1) + 1


def reference_amplitude(reference_intensity: np.ndarray, floor: float) -> tuple[np.ndarray, int]:
    """``|s|`` per pixel from ``|s|²``, floored at ``floor`` times its mean, and how many pixels
    were below the floor. Where the reference is dark, ``diag(conj(s))·T`` carries no usable
    phase and dividing by ``|s|`` would blow up its noise; the floor bounds that."""
    reference = np.maximum(np.asarray(reference_intensity, dtype=np.float64).reshape(-1), 0.0)
    lowest = float(floor) * reference.mean()
    return np.sqrt(np.maximum(reference, lowest)), int((reference < lowest).sum())
