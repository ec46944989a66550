"""Finding the output-to-input latency of one playback by cross-correlating a known mark.

On a real sound card the delay between the first sample played and its arrival at an input
changes from call to call (driver buffers, USB frames). A cable from an output to an input
(the *loopback*) records what was played through the same converters and buffers, so the
peak of its cross-correlation with the played mark gives that call's latency exactly.
"""

from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from labpnn.errors import InstrumentError
from labpnn.excitation import exponential_sweep

MIN_CORRELATION = 0.5  # a clean loopback gives ~1; a missing cable gives ~0


def sync_mark(samplerate: int, duration_s: float = 0.01, amplitude: float = 0.5) -> np.ndarray:
    """A short, broadband exponential chirp: its autocorrelation has one sharp peak."""
    return exponential_sweep(
        1000.0, 0.4 * samplerate, duration_s, samplerate, amplitude, fade_s=0.001
    )


def find_latency(template: np.ndarray, recording: np.ndarray, max_lag: int, what: str = "") -> int:
    """The lag in ``0..max_lag`` samples at which ``template`` appears in ``recording``.

    Raises :class:`InstrumentError` when the recording holds no clear copy of the template
    (a missing loopback cable, a muted output, a latency above ``max_lag``).
    """
    template = np.asarray(template, np.float64)
    k = len(template)
    segment = np.asarray(recording[: k + max_lag], np.float64)
    if not np.all(np.isfinite(segment)):
        raise InstrumentError(f"{what}the loopback input returned invalid samples (NaN or Inf)")
    nfft = sfft.next_fast_len(len(segment) + k, real=True)
    corr = sfft.irfft(sfft.rfft(segment, nfft) * np.conj(sfft.rfft(template, nfft)), nfft)
    corr = corr[: min(max_lag, len(segment) - k) + 1]
    lag = int(np.argmax(corr))
    energy = np.linalg.norm(template) * np.linalg.norm(segment[lag : lag + k])
    quality = corr[lag] / energy if energy > 0 else 0.0
    if quality < MIN_CORRELATION:
        raise InstrumentError(
            f"{what}the loopback input holds no clear copy of what was played (correlation "
            f"{quality:.2f}, need {MIN_CORRELATION}): check the loopback cable, that the output "
            f"is not muted, and that the latency is below max_latency_s ({max_lag} samples)"
        )
    return lag
