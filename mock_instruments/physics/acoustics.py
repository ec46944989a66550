"""A 2-D acoustic cavity with scatterers and nonlinear membranes, driven by a loudspeaker.

The linear part is modal. A rectangular cavity (rigid walls) has modes
``φ_mn(x, y) ∝ cos(mπx/Lx) cos(nπy/Ly)`` at ``f_mn = (c/2)·√((m/Lx)² + (n/Ly)²)``. Small
scatterers (posts, foam blocks) perturb them: each adds a rank-one "mass" term
``β_s φ(r_s) φ(r_s)ᵀ``, and the generalised eigenproblem ``K v = ω² M v`` over the rigid-box
basis (a Galerkin model) gives shifted frequencies and mixed mode shapes. The Green's
function between two points is then a sum of damped modes,

    h_ab(t) = Σ_i Φ_i(a) Φ_i(b) · e^{-t/τ_i} sin(ω_i t) / ω_i,

truncated where the slowest mode has decayed by 100 dB (``ir_length``). Walls and foam make
the decay fast (τ of a few ms, a reverberation time of tens of ms), which is what lets a
short multi-tone burst reach its steady state.

The nonlinear part is what makes the cavity a *neural* layer. The loudspeaker saturates
softly (``u = v_s·tanh(d/v_s)``); thin membranes placed in the cavity are driven by the local
pressure and saturate (``x_j = s·tanh(p_j/s)``), and re-radiate into the cavity. The
microphone therefore hears

    p_mic = h_S→mic ⋆ u + Σ_j κ_j · h_Mj→mic ⋆ x_j,

so the amplitude it measures at one tone depends on the amplitudes of the others
(compression, cross-modulation and intermodulation products landing on the tones).

Every path is normalised to unit RMS gain over a reference band, as if the microphone
preamplifier and the membrane placement had been adjusted once; full scale (FS) units then
mean the same thing at the DAC, in the cavity and at the ADC.

This module is pure physics: it knows nothing of sound cards, latency, noise or clocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np
import scipy.fft as sfft
import scipy.linalg

DECAY_DB = 100.0  # the impulse response is cut where the slowest mode is 100 dB down


# Cavity parameters that must be strictly positive; the other numbers must be >= 0
# (the seed too), and everything finite.
_POSITIVE_CAVITY = {"samplerate", "size_m", "sound_speed_m_s", "decay_s", "max_mode_hz",
                    "membrane_saturation_fs", "speaker_saturation_fs", "reference_band_hz"}  # fmt: skip


def _check_cavity_value(name: str, value: object) -> None:
    """Refuse a cavity value no cavity can have, naming its station key."""
    if name == "positions_m":
        return
    numbers = value if isinstance(value, tuple) else (value,)
    low = "> 0" if name in _POSITIVE_CAVITY else ">= 0"
    for number in numbers:
        ok = isinstance(number, (int, float)) and not isinstance(number, bool)
        ok = ok and math.isfinite(number) and (number > 0 if low == "> 0" else number >= 0)
        if not ok:
            raise ValueError(f"{name} must be {low}, got {value!r}")


@dataclass(frozen=True)
class CavityParams:
    """Everything that defines one cavity; two equal params give the same cavity."""

    samplerate: int = 48000
    seed: int = 1
    size_m: tuple[float, float] = (0.8, 0.6)
    sound_speed_m_s: float = 343.0
    decay_s: float = 0.005  # modal amplitude decay time; T60 = 6.9 × decay_s
    decay_spread: float = 0.2  # relative spread of the decay time between modes
    max_mode_hz: float = 5000.0  # modes above this are left out (speaker and mic roll off)
    scatterers: int = 6
    scatterer_area_m2: float = 0.01  # strength β of a scatterer (its effective area)
    membranes: int = 4
    membrane_saturation_fs: float = 0.08  # drive at which a membrane's response flattens
    membrane_coupling: float = 0.7  # re-radiated over direct path gain, per membrane
    speaker_saturation_fs: float = 0.9  # the cone's excursion limit
    reference_band_hz: tuple[float, float] = (200.0, 4000.0)
    positions_m: dict[str, tuple[float, float]] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: dict, **overrides) -> CavityParams:
        """Build from the ``simulation.cavity`` mapping of a station file (unknown keys refused)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(
                f"unknown cavity parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        values = {**config, **overrides}
        for key in ("size_m", "reference_band_hz"):
            if key in values:
                values[key] = tuple(float(v) for v in values[key])
        if "positions_m" in values:
            values["positions_m"] = {
                k: tuple(float(c) for c in v) for k, v in dict(values["positions_m"]).items()
            }
        for name, value in values.items():
            _check_cavity_value(name, value)
        return cls(**values)


def _rigid_box_modes(size_m, c, f_max):
    """Frequencies (Hz) and (m, n) indices of the rigid rectangle's modes below ``f_max``."""
    lx, ly = size_m
    m_max, n_max = int(2 * f_max * lx / c) + 1, int(2 * f_max * ly / c) + 1
    m, n = np.meshgrid(np.arange(m_max + 1), np.arange(n_max + 1), indexing="ij")
    f = 0.5 * c * np.sqrt((m / lx) ** 2 + (n / ly) ** 2)
    keep = (f <= f_max) & (f > 0)  # the (0, 0) mode is a static pressure: no AC response
    return f[keep], m[keep], n[keep]


def _mode_shapes(points, m, n, size_m):
    """Normalised rigid-box mode shapes (∫φ² dA = 1) at ``points[P, 2]`` -> ``[P, modes]``."""
    lx, ly = size_m
    norm = np.sqrt(np.where(m == 0, 1.0, 2.0) * np.where(n == 0, 1.0, 2.0) / (lx * ly))
    x, y = points[:, 0:1], points[:, 1:2]
    return norm * np.cos(np.pi * m * x / lx) * np.cos(np.pi * n * y / ly)


class AcousticCavity:
    """The seeded cavity: modes, impulse responses, and the nonlinear speaker-to-mic chain."""

    def __init__(self, params: CavityParams):
        self.params = p = params
        rng = np.random.default_rng([int(p.seed), 0xAC0])
        lx, ly = p.size_m

        def place(name):
            if name in p.positions_m:
                return np.asarray(p.positions_m[name], float)
            return rng.uniform([0.05 * lx, 0.05 * ly], [0.95 * lx, 0.95 * ly])

        # positions are drawn in a fixed order so adding a membrane does not move the mic
        self.positions = {"speaker": place("speaker"), "mic": place("mic")}
        scatterer_xy = np.array([place(f"scatterer{s}") for s in range(p.scatterers)])
        for j in range(p.membranes):
            self.positions[f"membrane{j}"] = place(f"membrane{j}")
        strengths = p.scatterer_area_m2 * rng.uniform(0.5, 1.5, p.scatterers)

        # Galerkin modes of the box with scatterers, over a basis a bit wider than the band
        f0, m, n = _rigid_box_modes(p.size_m, p.sound_speed_m_s, 1.3 * p.max_mode_hz)
        stiffness = np.diag((2 * np.pi * f0) ** 2)
        mass = np.eye(len(f0))
        if p.scatterers:
            phi_s = _mode_shapes(scatterer_xy.reshape(-1, 2), m, n, p.size_m)
            mass += (phi_s.T * strengths) @ phi_s
        omega2, vectors = scipy.linalg.eigh(stiffness, mass)
        keep = np.sqrt(omega2) <= 2 * np.pi * p.max_mode_hz
        self.mode_omega = np.sqrt(omega2[keep])  # rad/s at the nominal sound speed
        names = list(self.positions)
        points = np.array([self.positions[k] for k in names])
        shapes = _mode_shapes(points, m, n, p.size_m) @ vectors[:, keep]  # [points, modes]
        self._shape = dict(zip(names, shapes))
        jitter = rng.uniform(1 - p.decay_spread, 1 + p.decay_spread, len(self.mode_omega))
        self.mode_decay_s = p.decay_s * jitter
        self.ir_length = int(
            math.ceil(DECAY_DB / 20 * math.log(10) * self.mode_decay_s.max() * p.samplerate)
        )
        # paths: 0 = speaker->mic, 1..J = speaker->membrane j, J+1..2J = membrane j->mic
        sources = ["speaker"] * (1 + p.membranes) + [f"membrane{j}" for j in range(p.membranes)]
        targets = ["mic"] + [f"membrane{j}" for j in range(p.membranes)] + ["mic"] * p.membranes
        self._coupling = np.array(
            [self._shape[a] * self._shape[b] for a, b in zip(sources, targets)]
        )
        self._gain = None
        self.speed_factor = 1.0
        self._set_impulse_responses(1.0)

    # -- linear part ----------------------------------------------------------------
    @property
    def mode_frequencies_hz(self) -> np.ndarray:
        return self.mode_omega * self.speed_factor / (2 * np.pi)

    def _set_impulse_responses(self, speed_factor: float) -> None:
        fs = self.params.samplerate
        t = np.arange(self.ir_length) / fs
        omega = self.mode_omega * speed_factor
        modal = (
            np.exp(-t / self.mode_decay_s[:, None]) * np.sin(omega[:, None] * t) / omega[:, None]
        )
        irs = self._coupling @ modal  # [paths, L]
        if self._gain is None:  # calibrate once, at the nominal sound speed, as a lab would
            nfft = sfft.next_fast_len(8 * self.ir_length, real=True)
            freqs = sfft.rfftfreq(nfft, 1 / fs)
            lo, hi = self.params.reference_band_hz
            band = (freqs >= lo) & (freqs <= hi)
            spectra = sfft.rfft(irs, nfft, axis=-1)[:, band]
            self._gain = 1.0 / np.sqrt(np.mean(np.abs(spectra) ** 2, axis=-1))
            self._gain[1 + self.params.membranes :] *= self.params.membrane_coupling
        self.impulse_responses = irs * self._gain[:, None]
        self.speed_factor = float(speed_factor)
        self._spectra: dict[int, np.ndarray] = {}

    def set_speed_factor(self, factor: float) -> None:
        """Scale the sound speed (temperature drift): every mode shifts by the same ratio."""
        if factor != self.speed_factor:
            self._set_impulse_responses(factor)

    def path_spectra(self, nfft: int) -> np.ndarray:
        """Zero-padded spectra ``[paths, nfft//2+1]`` of the impulse responses (cached)."""
        if nfft not in self._spectra:
            self._spectra[nfft] = sfft.rfft(self.impulse_responses, nfft, axis=-1)
        return self._spectra[nfft]

    def small_signal_impulse_response(self) -> np.ndarray:
        """Speaker-to-mic impulse response at low level, membrane paths included (2L-1 samples)."""
        j = self.params.membranes
        nfft = sfft.next_fast_len(2 * self.ir_length, real=True)
        spectra = self.path_spectra(nfft)
        total = spectra[0] + np.sum(spectra[1 : 1 + j] * spectra[1 + j :], axis=0)
        return sfft.irfft(total, nfft)[: 2 * self.ir_length - 1]

    def small_signal_transfer(self, freqs_hz: np.ndarray) -> np.ndarray:
        """Speaker-to-mic transfer at low level, where the speaker and membranes are linear."""
        fs = self.params.samplerate
        w = np.exp(
            -2j * np.pi * np.asarray(freqs_hz, float)[:, None] * np.arange(self.ir_length) / fs
        )
        h = self.impulse_responses @ w.T  # [paths, freqs]
        j = self.params.membranes
        return h[0] + np.sum(h[1 : 1 + j] * h[1 + j :], axis=0)

    # -- the nonlinear chain ----------------------------------------------------------
    def _chain(self, drive: np.ndarray, nfft: int, n_out: int) -> np.ndarray:
        p = self.params
        spectra = self.path_spectra(nfft)
        u = p.speaker_saturation_fs * np.tanh(drive / p.speaker_saturation_fs)
        u_f = sfft.rfft(u, nfft, axis=-1)
        out_f = u_f * spectra[0]
        if p.membranes:
            j = p.membranes
            pressure = sfft.irfft(u_f[..., None, :] * spectra[1 : 1 + j], nfft, axis=-1)
            s = p.membrane_saturation_fs
            x = s * np.tanh(pressure[..., :n_out] / s)
            out_f = out_f + np.sum(sfft.rfft(x, nfft, axis=-1) * spectra[1 + j :], axis=-2)
        return sfft.irfft(out_f, nfft, axis=-1)[..., :n_out]

    def respond(self, drive: np.ndarray) -> np.ndarray:
        """Mic pressure (FS) for a speaker drive that starts from silence (any length, ``[..., n]``).

        Linear convolutions, so the cavity's ringing-in is there; the output has the input's
        length (the ringing after the end is cut, as a recording of that length would).
        """
        drive = np.asarray(drive, float)
        n = drive.shape[-1]
        nfft = sfft.next_fast_len(n + self.ir_length, real=True)
        return self._chain(drive, nfft, n)

    def respond_periodic(self, period: np.ndarray, chunk: int = 8) -> np.ndarray:
        """Steady-state mic pressure over one period, for drives repeated forever (``[B, N]``).

        Equals :meth:`respond` on the last period of a long repetition once the cavity has
        settled (after 2 × ``ir_length`` samples), up to rounding; this is the batched fast path.
        """
        period = np.atleast_2d(np.asarray(period, float))
        n = period.shape[-1]
        if n < self.ir_length:
            raise ValueError(
                f"a period of {n} samples is shorter than the cavity's ringing ({self.ir_length})"
            )
        out = np.empty_like(period)
        for start in range(0, len(period), chunk):
            out[start : start + chunk] = self._chain(period[start : start + chunk], n, n)
        return out
