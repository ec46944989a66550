"""A stand-in for the ``sounddevice`` module, served by a simulated acoustic world.

The sound-card driver talks to this object exactly as it talks to ``sounddevice``:
``playrec(data, samplerate=..., input_mapping=..., output_mapping=..., blocking=True)``,
``query_devices()``, ``query_hostapis()``, ``stop()`` and ``PortAudioError``. What the
outputs play goes into the world (speaker into the cavity, loopback into the cable), and
what comes back is what the inputs would record, with the latency of this call.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class PortAudioError(Exception):
    """Raised as ``sounddevice.PortAudioError`` would be (device gone, stream error)."""


class SimulatedSoundDevice:
    """sounddevice-shaped back-end; ``calls`` logs every playback, for tests."""

    PortAudioError = PortAudioError

    def __init__(self, world: Any, name: str = "labpnn simulated sound card (acoustic cavity)"):
        self.world = world
        self.name = name
        self.calls: list[dict[str, Any]] = []
        self.stops = 0

    def query_devices(self, device: Any = None, kind: str | None = None) -> dict[str, Any]:
        if device not in (None, 0, self.name):
            raise ValueError(f"No device matching {device!r} (the simulated card is device 0)")
        channels = self.world.device_channels
        return {
            "name": self.name,
            "index": 0,
            "hostapi": 0,
            "max_input_channels": channels,
            "max_output_channels": channels,
            "default_samplerate": float(self.world.samplerate),
            "default_low_output_latency": 0.005,
            "default_low_input_latency": 0.005,
        }

    def query_hostapis(self, index: int | None = None) -> dict[str, Any]:
        return {"name": "labpnn simulation", "devices": [0]}

    def playrec(
        self,
        data: Any,
        samplerate: float | None = None,
        channels: int | None = None,
        dtype: Any = None,
        out: Any = None,
        input_mapping: list[int] | None = None,
        output_mapping: list[int] | None = None,
        blocking: bool = False,
        **kwargs: Any,
    ) -> np.ndarray:
        data = np.asarray(data, np.float32)
        if data.ndim == 1:
            data = data[:, None]
        output_mapping = list(output_mapping or range(1, data.shape[1] + 1))
        input_mapping = list(input_mapping or range(1, (channels or 1) + 1))
        if not blocking:
            raise NotImplementedError("the simulated sound card supports blocking playrec only")
        if samplerate is not None and int(samplerate) != self.world.samplerate:
            raise PortAudioError(
                f"Invalid sample rate {samplerate} [PaErrorCode -9997]: the simulated card runs "
                f"at {self.world.samplerate} Hz (layout.samplerate)"
            )
        if len(output_mapping) != data.shape[1]:
            raise ValueError("output_mapping must have one entry per column of data")
        for ch in (*output_mapping, *input_mapping):
            if not 1 <= ch <= self.world.device_channels:
                raise ValueError(f"channel {ch} out of range 1..{self.world.device_channels}")
        self.calls.append(
            {
                "frames": len(data),
                "output_mapping": output_mapping,
                "input_mapping": input_mapping,
                "peak": float(np.max(np.abs(data))) if data.size else 0.0,
            }
        )
        outputs = {ch: data[:, i].astype(np.float64) for i, ch in enumerate(output_mapping)}
        return self.world.record(outputs, input_mapping)

    def stop(self, ignore_errors: bool = True) -> None:
        self.stops += 1
        self.world.interrupt()
