"""Audio calibration: the sound card's loop latency, and the bench's transfer at the working tones.

Both work on any object with the :class:`labpnn.drivers.audio.SoundCard` interface, real or
simulated. ``calibrate-audio`` stores ``LatencyResult.summary()`` as its ``/summary``.

* **Latency.** An exponential chirp is played while the loopback input records it; the peak
  of their cross-correlation is that call's latency. Repeating the call shows how much the
  latency wanders (USB and driver buffering), which is why every bench measurement is aligned
  by its own loopback. The microphone recording of the same chirp, deconvolved (Farina),
  gives the room's impulse response and the acoustic delay from speaker to microphone.
* **Transfer function.** A multi-tone at the working tones, measured a few times; the
  complex ratio of the recorded to the played tone gives ``H(f_k)`` at that level, and the
  spread between repeats gives its noise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from labpnn.drivers.audio.alignment import find_latency
from labpnn.errors import InstrumentError
from labpnn.excitation import (
    MultitonePlan,
    exponential_sweep,
    impulse_response_from_sweep,
    sweep_inverse_filter,
)

Progress = Callable[[int, int], None]


def _require_sound(soundcard: Any) -> None:
    if float(soundcard.output_level) <= 0:
        raise InstrumentError(
            f"{soundcard.label}: the output is muted (output_level=0); raise it within the lab "
            "limit before calibrating"
        )


@dataclass
class LatencyResult:
    """Per-call loop latency (loopback) and speaker-to-microphone delay, in samples."""

    latency_samples: np.ndarray
    acoustic_delay_samples: np.ndarray
    impulse_response: np.ndarray  # mean over calls, microphone per unit drive
    samplerate: int

    @property
    def mean(self) -> float:
        return float(np.mean(self.latency_samples))

    @property
    def std(self) -> float:
        return float(np.std(self.latency_samples))

    def summary(self) -> dict[str, float]:
        """The ``/summary`` keys of ``calibrate-audio`` (DESIGN.md vocabulary)."""
        return {"latency_samples": self.mean, "latency_std_samples": self.std}


def measure_latency(
    soundcard: Any,
    n_calls: int = 10,
    f_start_hz: float = 100.0,
    f_stop_hz: float | None = None,
    duration_s: float = 0.1,
    amplitude: float = 0.1,
    ir_length_s: float = 0.1,
    out_channel: str | int = "speaker",
    in_channel: str | int = "mic",
    progress: Progress | None = None,
    on_call: Callable[[int, int, int, np.ndarray], None] | None = None,
) -> LatencyResult:
    """Play a chirp ``n_calls`` times; cross-correlate the loopback to find each call's latency.

    ``on_call(call, latency, acoustic_delay, impulse_response)`` sees each call as it is
    measured, so a run that is stopped half way keeps the calls it made.
    """
    _require_sound(soundcard)
    fs = int(soundcard.samplerate)
    f_stop = f_stop_hz or 0.45 * fs
    chirp = exponential_sweep(f_start_hz, f_stop, duration_s, fs, amplitude)
    inverse = sweep_inverse_filter(chirp, f_start_hz, f_stop, fs)
    ir_length = int(round(ir_length_s * fs))
    max_lag = int(soundcard.pad_samples)
    played = np.concatenate([chirp, np.zeros(max_lag + ir_length)])
    latencies, delays, responses = [], [], []
    for call in range(n_calls):
        response, loop = soundcard.playrec(played, out_channel, in_channel)
        latency = find_latency(chirp, loop, max_lag, what=f"{soundcard.label}: ")
        aligned = response[latency : latency + len(chirp) + ir_length].astype(np.float64)
        ir = impulse_response_from_sweep(aligned, inverse, ir_length) / float(
            soundcard.output_level
        )
        latencies.append(latency)
        delays.append(int(np.argmax(np.abs(ir))))
        responses.append(ir)
        if on_call is not None:
            on_call(call, latency, delays[-1], ir)
        if progress is not None:
            progress(call + 1, n_calls)
    return LatencyResult(
        np.asarray(latencies, np.int64),
        np.asarray(delays, np.int64),
        np.mean(responses, axis=0),
        fs,
    )


@dataclass
class TransferResult:
    """``H(f_k)``: recorded over played complex amplitude at each tone, at one drive level."""

    tones_hz: np.ndarray
    transfer: np.ndarray  # complex mean over repeats
    transfer_std: np.ndarray  # std of |H| between repeats (noise)
    amplitude_fs: np.ndarray  # per-tone amplitude on the speaker, after output_level

    @property
    def magnitude_db(self) -> np.ndarray:
        return 20 * np.log10(np.abs(self.transfer))


def transfer_function(
    soundcard: Any,
    tones_hz: Sequence[float],
    amplitude: float | Sequence[float] | None = None,
    window_s: float = 0.1,
    settle_s: float = 0.15,
    n_average: int = 4,
    out_channel: str | int = "speaker",
    in_channel: str | int = "mic",
    progress: Progress | None = None,
) -> TransferResult:
    """Measure ``H`` at ``tones_hz`` (rounded to the window's bins) with a multi-tone.

    ``amplitude`` is per tone in full-scale units before ``output_level``; the default,
    ``1/n_tones``, is what the acoustic bench plays for an input of 1.
    """
    _require_sound(soundcard)
    plan = MultitonePlan.on_bins(tones_hz, int(soundcard.samplerate), window_s, settle_s)
    amps = np.broadcast_to(
        np.asarray(1.0 / plan.n_tones if amplitude is None else amplitude, float), (plan.n_tones,)
    )
    played = amps * float(soundcard.output_level) * np.exp(1j * plan.phases)
    signal = plan.signal(amps)
    estimates = []
    for repeat in range(n_average):
        response = soundcard.measure(signal, out_channel, in_channel)
        estimates.append(plan.tone_spectrum(plan.window(response)) / played)
        if progress is not None:
            progress(repeat + 1, n_average)
    estimates = np.asarray(estimates)
    return TransferResult(
        np.asarray(plan.tones_hz),
        estimates.mean(axis=0),
        np.abs(estimates).std(axis=0),
        amps * float(soundcard.output_level),
    )
