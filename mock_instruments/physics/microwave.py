"""A reverberant microwave cavity with a programmable metasurface, and a VNA's hidden error boxes.

The cavity is a coupled-mode (effective Hamiltonian) model, the standard description of a
chaotic cavity seen through antennas (Mahaux-Weidenmüller / "Heidelberg" approach)::

    S(f) = I - i Wᵀ (f·I - H_eff(b))⁻¹ W,      H_eff(b) = H(b) - (i/2)(W Wᵀ + Γ_abs·I)
    H(b) = H0 + Σ_i b_i s_i (1 - i·η) u_i u_iᵀ

* ``H0``: real symmetric GOE matrix (level repulsion of a chaotic cavity), in Hz, whose
  spectrum covers the band;
* ``W``: real [n_modes, 2] coupling of the modes to the two antennas (ports), in √Hz;
* ``Γ_abs = f_centre / Q``: wall absorption;
* metasurface element ``i`` in state ``b_i = 1`` adds a rank-one perturbation of strength
  ``s_i`` (a few mode spacings) along its field overlap ``u_i``; the small imaginary part
  ``η`` makes the element slightly lossy. Every bit therefore shifts and broadens the modes
  it overlaps, mixes modes (avoided crossings), and |S21| depends on the configuration
  *nonlinearly*, as multiple scattering does in the real bench (SCIENCE.md §1).

S is symmetric (reciprocal) and passive (|S| ≤ 1). The model is cheap enough to serve live:
one eigen-decomposition of ``H_eff`` per configuration, then a sum over modes per frequency.

The VNA never sees the cavity directly: each port reaches it through a smooth random 2-port
*error box* (directivity, source match, reflection tracking: cables, adapters, couplers).
Raw data are ``X ⋆ DUT ⋆ Y``; a scikit-rf calibration has to remove X and Y.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

TWO_PI = 2.0 * np.pi


def _one_blas_thread():
    """Small dense eigenproblems run 5-10x slower with BLAS threads fighting for cores."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext
    controller = ThreadpoolController()
    return lambda: controller.limit(limits=1, user_api="blas")


_single_threaded = _one_blas_thread()


def cascade(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connect port 2 of 2-port ``a`` to port 1 of 2-port ``b`` (Redheffer star product).

    ``a`` and ``b`` are S-matrices ``[..., 2, 2]`` that broadcast against each other.
    """
    a11, a12, a21, a22 = a[..., 0, 0], a[..., 0, 1], a[..., 1, 0], a[..., 1, 1]
    b11, b12, b21, b22 = b[..., 0, 0], b[..., 0, 1], b[..., 1, 0], b[..., 1, 1]
    den = 1.0 - a22 * b11
    out = np.empty(np.broadcast_shapes(a.shape, b.shape), dtype=complex)
    out[..., 0, 0] = a11 + a12 * a21 * b11 / den
    out[..., 0, 1] = a12 * b12 / den
    out[..., 1, 0] = a21 * b21 / den
    out[..., 1, 1] = b22 + b21 * b12 * a22 / den
    return out


def flip_ports(s: np.ndarray) -> np.ndarray:
    """The same 2-port seen from the other side (port 1 <-> port 2)."""
    return s[..., ::-1, ::-1]


def one_port_pair(gamma1: np.ndarray, gamma2: np.ndarray) -> np.ndarray:
    """A 2-port made of two unconnected one-ports (a reflect standard on each port)."""
    gamma1, gamma2 = np.broadcast_arrays(gamma1, gamma2)
    s = np.zeros(gamma1.shape + (2, 2), dtype=complex)
    s[..., 0, 0] = gamma1
    s[..., 1, 1] = gamma2
    return s


def smooth_response(rng: np.random.Generator, scale: float, terms: int = 3):
    """Generator of a smooth random complex function of frequency (a few short delays)."""
    amps = (
        (rng.standard_normal(terms) + 1j * rng.standard_normal(terms)) * scale / np.sqrt(2 * terms)
    )
    delays = rng.uniform(0.05e-9, 1.0e-9, terms)

    def value(f: np.ndarray) -> np.ndarray:
        f = np.asarray(f, dtype=float)
        return np.sum(amps * np.exp(-1j * TWO_PI * f[..., None] * delays), axis=-1)

    return value


@dataclass
class ErrorBox:
    """One port's hidden error network: directivity e00, source match e11, tracking e01=e10."""

    directivity: object
    source_match: object
    tracking_gain: float
    delay_s: float
    ripple: object

    def s(self, f_hz: np.ndarray) -> np.ndarray:
        """S-matrix ``[F, 2, 2]``; port 1 faces the VNA receiver, port 2 the device."""
        f = np.asarray(f_hz, dtype=float)
        through = np.sqrt(self.tracking_gain) * np.exp(-1j * np.pi * f * self.delay_s)
        through = through * (1.0 + self.ripple(f))
        s = np.empty(f.shape + (2, 2), dtype=complex)
        s[..., 0, 0] = self.directivity(f)
        s[..., 1, 1] = self.source_match(f)
        s[..., 0, 1] = s[..., 1, 0] = through
        return s


def random_error_box(rng: np.random.Generator) -> ErrorBox:
    """A plausible cable + coupler: -25 dB directivity, -18 dB match, 0.5..0.9 tracking."""
    return ErrorBox(
        directivity=smooth_response(rng, 0.06),
        source_match=smooth_response(rng, 0.12),
        tracking_gain=float(rng.uniform(0.5, 0.9)),
        delay_s=float(rng.uniform(1e-9, 4e-9)),
        ripple=smooth_response(rng, 0.05),
    )


def standard_gamma(kind: str, f_hz: np.ndarray, definition: dict | None = None) -> np.ndarray:
    """Reflection of a one-port calibration standard.

    ``definition`` (all optional): ``delay_s`` (one-way offset delay, lossless 50 Ω line),
    ``c_f`` (open: fringing capacitance in farads), ``gamma`` (load: residual reflection).
    Ideal standards when absent: short -1, open +1, load 0.
    """
    d = definition or {}
    f = np.asarray(f_hz, dtype=float)
    w = TWO_PI * f
    if kind == "short":
        g = -np.ones_like(f, dtype=complex)
    elif kind == "open":
        zc = 1j * w * float(d.get("c_f", 0.0)) * 50.0
        g = (1.0 - zc) / (1.0 + zc)
    elif kind == "load":
        g = np.full(f.shape, complex(d.get("gamma", 0.0)))
    else:
        raise ValueError(f"unknown reflect standard '{kind}' (short, open, load)")
    return g * np.exp(-2j * w * float(d.get("delay_s", 0.0)))


def thru_s(f_hz: np.ndarray, definition: dict | None = None) -> np.ndarray:
    """A matched lossless thru with an optional one-way delay."""
    f = np.asarray(f_hz, dtype=float)
    t = np.exp(-1j * TWO_PI * f * float((definition or {}).get("delay_s", 0.0)))
    s = np.zeros(f.shape + (2, 2), dtype=complex)
    s[..., 0, 1] = s[..., 1, 0] = t
    return s


class MetasurfaceCavity:
    """The device: cavity modes perturbed by the metasurface's binary configuration.

    Parameters are in Hz. ``bit_strength`` is each element's perturbation in units of the
    mean mode spacing; ``coupling`` is the antennas' coupling width in the same units.
    All randomness comes from ``seed``; two cavities with the same arguments are identical.
    """

    def __init__(
        self,
        n_bits: int = 40,
        n_modes: int = 60,
        band_hz: tuple[float, float] = (1.9e9, 2.6e9),
        q_factor: float = 800.0,
        coupling: float = 0.3,
        bit_strength: float = 4.0,
        element_loss: float = 0.05,
        seed: int = 1,
    ):
        rng = np.random.default_rng([int(seed), 0x6D77])  # "mw": independent of other streams
        lo, hi = (float(b) for b in band_hz)
        self.n_bits, self.n_modes = int(n_bits), int(n_modes)
        self.spacing_hz = (hi - lo) / self.n_modes
        self.f_centre_hz = 0.5 * (lo + hi)
        goe = rng.standard_normal((n_modes, n_modes))
        goe = (goe + goe.T) / np.sqrt(2.0 * n_modes)  # semicircle of radius 2
        self.h0 = self.f_centre_hz * np.eye(n_modes) + goe * (hi - lo) / 4.0
        self.w = rng.standard_normal((n_modes, 2)) * np.sqrt(coupling * self.spacing_hz)
        self.absorption_hz = self.f_centre_hz / float(q_factor)
        overlap = rng.standard_normal((n_bits, n_modes))
        self.overlap = overlap / np.linalg.norm(overlap, axis=1, keepdims=True)
        strength = bit_strength * self.spacing_hz * rng.uniform(0.5, 1.5, n_bits)
        self.element_strength = strength * (1.0 - 1j * float(element_loss))
        self._damping = -0.5j * (self.w @ self.w.T + self.absorption_hz * np.eye(n_modes))

    def hamiltonian(self, bits: np.ndarray, frequency_scale: float = 1.0) -> np.ndarray:
        """``H_eff`` for a batch of configurations ``[B, n_bits]`` -> ``[B, M, M]``.

        ``frequency_scale`` models slow thermal drift (all modes scale together).
        """
        bits = np.atleast_2d(np.asarray(bits, dtype=float))
        weighted = bits * self.element_strength  # [B, n_bits]
        pert = (self.overlap.T[None] * weighted[:, None, :]) @ self.overlap  # Σ_i w_i u_i u_iᵀ
        return (self.h0 * frequency_scale)[None] + pert + self._damping[None]

    def s_params(
        self, bits: np.ndarray, f_hz: np.ndarray, frequency_scale: float = 1.0
    ) -> np.ndarray:
        """True device S-matrices ``[B, F, 2, 2]`` for configurations ``[B, n_bits]``."""
        bits = np.atleast_2d(np.asarray(bits))
        if bits.shape[-1] != self.n_bits:
            raise ValueError(f"configuration has {bits.shape[-1]} bits, cavity has {self.n_bits}")
        f = np.asarray(f_hz, dtype=float)
        with _single_threaded():
            lam, vec = np.linalg.eig(self.hamiltonian(bits, frequency_scale))
            left = np.einsum("mp,bmk->bpk", self.w, vec)  # Wᵀ V      [B, 2, M]
            right = np.linalg.solve(vec, np.broadcast_to(self.w, vec.shape[:-1] + (2,)))  # V⁻¹ W
        green = 1.0 / (f[None, :, None] - lam[:, None, :])  # [B, F, M]
        residues = left.transpose(0, 2, 1)[..., :, None] * right[..., None, :]  # [B, M, 2, 2]
        s = -1j * (green @ residues.reshape(len(lam), -1, 4)).reshape(len(lam), len(f), 2, 2)
        s[..., 0, 0] += 1.0
        s[..., 1, 1] += 1.0
        return s
