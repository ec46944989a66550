"""Excitation signals for sound-card measurements: multi-tones, exponential sweeps, and the plan
of a multi-tone burst whose tones can be read back from one FFT window.

Pure numpy; nothing here touches a sound card, so procedures, benches and simulators can all
build the very same samples.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import scipy.fft as sfft

from labpnn.errors import ConfigError


def newman_phases(n_tones: int) -> np.ndarray:
    """Newman's phases ``φ_k = π k² / n``: a low crest factor for equal-amplitude multi-tones.

    They do not depend on the amplitudes, so the same tones always get the same phases and
    a tone's amplitude can carry data without moving the others' phases.
    """
    k = np.arange(n_tones)
    return np.pi * k**2 / n_tones


def schroeder_phases(amplitudes: Sequence[float]) -> np.ndarray:
    """Schroeder's phases for a multi-tone with unequal amplitudes (IEEE Trans. IT 16, 1970)."""
    power = np.asarray(amplitudes, float) ** 2
    power = power / power.sum() if power.sum() > 0 else np.full(len(power), 1 / len(power))
    k = np.arange(len(power))
    return np.array([-2 * np.pi * np.sum((i - k[:i]) * power[:i]) for i in k])


def crest_factor(signal: np.ndarray) -> float:
    """Peak over RMS; a pure tone has √2, a multi-tone with zero phases √(2n)."""
    signal = np.asarray(signal, float)
    return float(np.max(np.abs(signal)) / np.sqrt(np.mean(signal**2)))


def apply_fade(signal: np.ndarray, n_fade: int) -> np.ndarray:
    """Raised-cosine fade-in and fade-out over ``n_fade`` samples, in place; avoids speaker clicks."""
    if n_fade > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n_fade) + 0.5) / n_fade)
        signal[..., :n_fade] *= ramp
        signal[..., -n_fade:] *= ramp[::-1]
    return signal


def multitone(
    tones_hz: Sequence[float],
    amplitudes: Sequence[float],
    duration_s: float,
    samplerate: float,
    phases: str | Sequence[float] = "newman",
    fade_s: float = 0.005,
) -> np.ndarray:
    """``Σ a_k cos(2π f_k t + φ_k)`` in full-scale units, with fades at both ends.

    ``phases`` is ``"newman"`` (fixed, low crest factor), ``"schroeder"`` (amplitude-aware),
    ``"zero"``, or explicit radians.
    """
    tones = np.asarray(tones_hz, float)
    amps = np.broadcast_to(np.asarray(amplitudes, float), tones.shape)
    if isinstance(phases, str):
        table = {"newman": newman_phases, "schroeder": lambda _: schroeder_phases(amps)}
        phi = np.zeros(len(tones)) if phases == "zero" else table[phases](len(tones))
    else:
        phi = np.asarray(phases, float)
    t = np.arange(int(round(duration_s * samplerate))) / samplerate
    signal = amps @ np.cos(2 * np.pi * tones[:, None] * t + phi[:, None])
    return apply_fade(signal, int(round(fade_s * samplerate)))


def exponential_sweep(
    f_start_hz: float,
    f_stop_hz: float,
    duration_s: float,
    samplerate: float,
    amplitude: float = 1.0,
    fade_s: float = 0.005,
) -> np.ndarray:
    """Farina's exponential sine sweep ``sin(ω₁T/R·(e^{tR/T} − 1))``, ``R = ln(f₂/f₁)``.

    Its harmonic distortion products land *before* the linear impulse response after
    deconvolution, so the linear part can be cut out cleanly (Farina, AES 2000).
    """
    if not 0 < f_start_hz < f_stop_hz <= samplerate / 2:
        raise ValueError(
            f"a sweep needs 0 < f_start < f_stop <= samplerate/2, got {f_start_hz:g}..{f_stop_hz:g} Hz "
            f"at {samplerate:g} Hz"
        )
    rate = math.log(f_stop_hz / f_start_hz)
    t = np.arange(int(round(duration_s * samplerate))) / samplerate
    phase = 2 * np.pi * f_start_hz * duration_s / rate * (np.exp(t * rate / duration_s) - 1)
    return apply_fade(amplitude * np.sin(phase), int(round(fade_s * samplerate)))


def sweep_inverse_filter(
    sweep: np.ndarray, f_start_hz: float, f_stop_hz: float, samplerate: float
) -> np.ndarray:
    """The time-reversed sweep with a −6 dB/octave envelope, scaled so sweep ⋆ inverse ≈ δ in band."""
    n = len(sweep)
    rate = math.log(f_stop_hz / f_start_hz)
    t = np.arange(n) / samplerate
    inverse = sweep[::-1] * np.exp(-t * rate / (n / samplerate))
    nfft = sfft.next_fast_len(2 * n, real=True)
    product = sfft.rfft(sweep, nfft) * sfft.rfft(inverse, nfft)
    freqs = sfft.rfftfreq(nfft, 1 / samplerate)
    band = (freqs > f_start_hz * 1.5) & (freqs < f_stop_hz / 1.5)
    return inverse / np.median(np.abs(product[band]))


def impulse_response_from_sweep(
    recording: np.ndarray, inverse: np.ndarray, length: int
) -> np.ndarray:
    """Deconvolve an aligned sweep recording: the linear impulse response, ``length`` samples."""
    n = len(inverse)
    nfft = sfft.next_fast_len(len(recording) + n, real=True)
    full = sfft.irfft(sfft.rfft(recording, nfft) * sfft.rfft(inverse, nfft), nfft)
    return full[n - 1 : n - 1 + length]


@dataclass(frozen=True)
class MultitonePlan:
    """A periodic multi-tone burst whose tones sit exactly on FFT bins of the analysis window.

    The burst is ``fade | settle | window | fade``. Because every tone completes a whole
    number of cycles in the window, the window holds one period of a periodic signal: once
    the room has settled, the spectrum read there has no leakage, and one period computed
    once (``period``) is all a batched simulator needs. ``window_start`` is where the
    analysis window begins inside the burst.
    """

    tones_hz: tuple[float, ...]
    samplerate: int = 48000
    window_s: float = 0.1
    settle_s: float = 0.15
    fade_s: float = 0.005

    LAYOUT_KEYS = ("tones_hz", "n_tones", "f_min_hz", "f_max_hz", "spacing", "duration_s",
                   "settle_s", "fade_s", "samplerate")  # fmt: skip

    @classmethod
    def on_bins(cls, tones_hz: Sequence[float], samplerate: int = 48000, window_s: float = 0.1,
                settle_s: float = 0.15, fade_s: float = 0.005) -> MultitonePlan:  # fmt: skip
        """Round each tone to the nearest bin of the window (resolution ``1/window_s``)."""
        n_window = int(round(window_s * samplerate))
        resolution = samplerate / n_window
        bins = np.rint(np.asarray(tones_hz, float) / resolution).astype(int)
        if len(bins) == 0:
            raise ConfigError("a multi-tone needs at least one tone")
        if bins.min() < 1 or bins.max() >= n_window // 2:
            raise ConfigError(
                f"tones must lie between {resolution:g} Hz and {samplerate / 2 - resolution:g} Hz "
                f"(the window's first bin and Nyquist at {samplerate} Hz); got "
                f"{min(tones_hz):g}..{max(tones_hz):g} Hz"
            )
        if len(set(bins.tolist())) != len(bins):
            raise ConfigError(
                f"two tones fall on the same {resolution:g} Hz bin of a {window_s:g} s window; "
                "spread the tones or lengthen duration_s"
            )
        return cls(tuple(float(b * resolution) for b in bins), int(samplerate), float(window_s),
                   float(settle_s), float(fade_s))  # fmt: skip

    @classmethod
    def from_layout(cls, layout: Mapping[str, Any]) -> MultitonePlan:
        """From a bench layout: ``tones_hz``, or ``n_tones`` between ``f_min_hz`` and ``f_max_hz``."""
        samplerate = int(layout.get("samplerate", 48000))
        if "tones_hz" in layout:
            tones = [float(f) for f in layout["tones_hz"]]
        else:
            n = int(layout.get("n_tones", 20))
            f_min, f_max = (
                float(layout.get("f_min_hz", 300.0)),
                float(layout.get("f_max_hz", 2200.0)),
            )
            spacing = layout.get("spacing", "linear")
            if spacing not in ("linear", "log"):
                raise ConfigError(f"layout.spacing must be 'linear' or 'log', got {spacing!r}")
            tones = (np.geomspace if spacing == "log" else np.linspace)(f_min, f_max, n).tolist()
        return cls.on_bins(
            tones,
            samplerate,
            float(layout.get("duration_s", 0.1)),
            float(layout.get("settle_s", 0.15)),
            float(layout.get("fade_s", 0.005)),
        )

    # -- sample counts ------------------------------------------------------------
    @property
    def n_window(self) -> int:
        return int(round(self.window_s * self.samplerate))

    @property
    def n_settle(self) -> int:
        return int(round(self.settle_s * self.samplerate))

    @property
    def n_fade(self) -> int:
        return int(round(self.fade_s * self.samplerate))

    @property
    def window_start(self) -> int:
        return self.n_fade + self.n_settle

    @property
    def n_samples(self) -> int:
        return self.window_start + self.n_window + self.n_fade

    @property
    def n_tones(self) -> int:
        return len(self.tones_hz)

    @cached_property
    def bins(self) -> np.ndarray:
        return np.rint(np.asarray(self.tones_hz) * self.window_s).astype(int)

    @cached_property
    def phases(self) -> np.ndarray:
        return newman_phases(self.n_tones)

    # -- synthesis and analysis -----------------------------------------------------
    def period(self, amplitudes: np.ndarray) -> np.ndarray:
        """One period ``[..., n_window]`` as it appears in the window (full-scale units)."""
        amps = np.asarray(amplitudes, float)
        spectrum = np.zeros(amps.shape[:-1] + (self.n_window // 2 + 1,), complex)
        spectrum[..., self.bins] = amps * (self.n_window / 2) * np.exp(1j * self.phases)
        return sfft.irfft(spectrum, self.n_window, axis=-1)

    def signal(self, amplitudes: np.ndarray) -> np.ndarray:
        """The whole burst ``[..., n_samples]``: the period repeated, faded in and out."""
        index = (np.arange(self.n_samples) - self.window_start) % self.n_window
        return apply_fade(self.period(amplitudes)[..., index], self.n_fade)

    def window(self, response: np.ndarray) -> np.ndarray:
        """The analysis window of a response aligned to the burst's first sample."""
        return response[..., self.window_start : self.window_start + self.n_window]

    def tone_spectrum(self, window: np.ndarray) -> np.ndarray:
        """Complex amplitude (full-scale units) of each tone in a window ``[..., n_window]``."""
        spectrum = sfft.rfft(np.asarray(window, np.float64), axis=-1)
        return spectrum[..., self.bins] * (2 / self.n_window)

    def tone_amplitudes(self, window: np.ndarray) -> np.ndarray:
        return np.abs(self.tone_spectrum(window))
