"""The acoustic bench as a PhysicalLayer: tone amplitudes in, tone amplitudes out.

Encoding. Input ``x[b, k]`` is clipped to [0, 1] and becomes the amplitude of tone ``k`` in
a multi-tone burst: ``x_k / n_tones`` of the DAC's full scale, so that no input can clip the
DAC, times the sound card's ``output_level`` (which the lab limit caps). The tones, the burst
timing and the sample rate come from the bench layout (``MultitonePlan.from_layout``).

Decoding. The burst is played through the speaker while the microphone and the loopback are
recorded; the response is aligned by the loopback, cut to the analysis window after the room
has settled, and the magnitude of the spectrum is read at each tone. Outputs are that
magnitude divided by the amplitude an input of 1 drives (``output_level / n_tones``): a
dimensionless gain per tone, about 1 for a linear, flat cavity.

On a simulated station with ``simulation.transport: direct`` the batch goes to the world's
``measure_amplitudes`` instead, which returns the same numbers without the driver round trip.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labpnn.bench.base import BenchLayer
from labpnn.errors import ConfigError
from labpnn.excitation import MultitonePlan


class AcousticBench(BenchLayer):
    """A speaker, a cavity and a microphone: ``[B, n_tones] -> [B, n_tones]``."""

    def __init__(self, station: Any, role: str = "audio", out_channel: str = "speaker",
                 in_channel: str = "mic"):  # fmt: skip
        super().__init__(station)
        self.card = station[role]
        self.plan = MultitonePlan.from_layout(station.bench.layout)
        if int(self.card.samplerate) != self.plan.samplerate:
            raise ConfigError(
                f"{role}: the sound card runs at {self.card.samplerate} Hz but layout.samplerate is "
                f"{self.plan.samplerate} Hz; make them equal"
            )
        self.out_channel, self.in_channel = out_channel, in_channel
        self.n_in = self.n_out = self.plan.n_tones
        self.tones_hz = np.asarray(self.plan.tones_hz)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Tone amplitudes (full scale, before ``output_level``) for inputs ``x``."""
        return np.clip(x, 0.0, 1.0) / self.plan.n_tones

    def full_scale_gain(self) -> float:
        """The amplitude (FS) that an input of 1 puts on the speaker."""
        level = float(self.card.output_level)
        if level <= 0:
            raise ConfigError(
                f"{self.card.label} is muted (output_level=0): set it in the station's settings "
                "(e.g. settings: {output_level: 0.3}) within the lab limit"
            )
        return level / self.plan.n_tones

    def measure(self, x: np.ndarray) -> np.ndarray:
        scale = self.full_scale_gain()
        amplitudes = self.encode(x)
        if self.direct:
            raw = self.station.world.measure_amplitudes(amplitudes)
        else:
            raw = np.empty_like(amplitudes)
            for row, amps in enumerate(amplitudes):
                response = self.card.measure(
                    self.plan.signal(amps), self.out_channel, self.in_channel
                )
                raw[row] = self.plan.tone_amplitudes(self.plan.window(response))
        return raw / scale
