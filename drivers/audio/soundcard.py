"""A sound card driving a loudspeaker and recording a microphone, through ``sounddevice``.

Every measurement plays and records in one duplex stream (``playrec``) with explicit channel
maps, and records a wired *loopback* (an output cabled to an input) at the same time: the
latency between playing and recording changes from call to call on real cards, and the
loopback is how each call is aligned. ``sounddevice`` is imported only when a real card is
opened, because importing it fails outright on machines without the PortAudio library.

Any object with sounddevice's call shape (``playrec``, ``query_devices``, ``stop``) can stand
in as ``backend``; the simulated acoustic bench hands one over in its place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from labpnn import excitation
from labpnn.clock import WALL_CLOCK
from labpnn.data_hooks import DataHooks
from labpnn.errors import (
    ConfigError,
    DeviceLost,
    InstrumentError,
    InstrumentTimeout,
    LimitError,
    MissingDependency,
)
from labpnn.settings import InstrumentSettings, Setting, refuse_unknown_options

from .alignment import find_latency, sync_mark

INSTALL_HINT = (
    "install the PortAudio library: on Debian/Ubuntu `sudo apt-get install libportaudio2`, on "
    "Fedora `sudo dnf install portaudio`, on macOS `brew install portaudio`; on Windows it ships "
    "inside the sounddevice wheel (`pip install --force-reinstall sounddevice`)"
)
LOST_MARKERS = ("unavailable", "invalid device", "-9985", "-9996", "disconnected", "not found")


def load_sounddevice() -> Any:
    """Import ``sounddevice``; a missing PortAudio becomes a :class:`MissingDependency`."""
    try:
        import sounddevice
    except OSError as exc:  # sounddevice raises OSError when libportaudio cannot be loaded
        raise MissingDependency(
            f"the sound card needs the PortAudio library, which was not found ({exc}); "
            + INSTALL_HINT
        ) from None
    except ImportError:
        raise MissingDependency(
            "the sound card needs the Python package sounddevice: `pip install sounddevice`, then "
            + INSTALL_HINT
        ) from None
    return sounddevice


def _channel_map(value: Any, default: dict[str, int], what: str, label: str) -> dict[str, int]:
    if value is None:
        return dict(default)
    if isinstance(value, int):
        value = {next(iter(default)): value}
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(f"{label}: {what} must map names to channel numbers, e.g. {default}")
    out = {}
    for name, channel in value.items():
        if not isinstance(channel, int) or channel < 1:
            raise ConfigError(
                f"{label}: {what}['{name}']={channel!r} must be a channel number >= 1"
            )
        out[str(name)] = channel
    return out


class SoundCard(InstrumentSettings):
    """A duplex sound card with a speaker output, a microphone input and a loopback cable.

    Channels are 1-based, as in sounddevice's ``output_mapping``/``input_mapping``.
    ``output_channels`` and ``input_channels`` name them (``{"speaker": 1}``, ``{"mic": 1}``);
    ``loopback`` is the ``(output, input)`` pair joined by a cable. The card starts muted
    (``output_level`` 0): the station's ``settings`` raise it, within the lab limit.
    """

    SETTINGS = (
        Setting("output_level", unit="FS", range=(0.0, 1.0),
                doc="Playback gain on every signal, as a fraction of the DAC's full scale; 0 mutes."),
        Setting("samplerate", unit="Hz", kind=int, range=(8000, 384000),
                doc="Sample rate of playback and recording."),
        Setting("max_latency_s", unit="s", range=(0.001, 2.0),
                doc="Longest output-to-input latency searched; this much silence ends every playback."),
        Setting("output_channels", kind=dict, settable=False, doc="Output channels by name."),
        Setting("input_channels", kind=dict, settable=False, doc="Input channels by name."),
        Setting("loopback", kind=tuple, settable=False,
                doc="(output, input) channels joined by the loopback cable."),
    )  # fmt: skip

    def __init__(
        self,
        label: str = "audio",
        limits: Mapping[str, Sequence[float]] | None = None,
        device: int | str | None = None,
        samplerate: int = 48000,
        output_channels: Mapping[str, int] | int | None = None,
        input_channels: Mapping[str, int] | int | None = None,
        loopback: Sequence[int] = (2, 2),
        backend: Any = None,
        clock: Any = None,
        max_latency_s: float = 0.05,
        sync_s: float = 0.01,
        **options: Any,
    ):
        self._init_settings(label, limits)
        refuse_unknown_options(label, type(self), options)
        self.device = device
        self.data_hooks = DataHooks()  # each recording of the measured input, for live views
        self.output_channels = _channel_map(
            output_channels, {"speaker": 1}, "output_channels", label
        )
        self.input_channels = _channel_map(input_channels, {"mic": 1}, "input_channels", label)
        try:
            loop_out, loop_in = (int(c) for c in loopback)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{label}: loopback must be [output, input], got {loopback!r}"
            ) from None
        if loop_in in self.input_channels.values():
            raise ConfigError(
                f"{label}: input {loop_in} cannot be both the loopback and a measurement input"
            )
        self.loopback = (loop_out, loop_in)
        self._samplerate = self.check("samplerate", samplerate)
        self._max_latency_s = self.check("max_latency_s", max_latency_s)
        self._sync_s = float(sync_s)
        self._output_level = 0.0
        self.clock = clock or WALL_CLOCK
        self._sd = backend if backend is not None else load_sounddevice()
        self.last_latency_samples: int | None = None
        self.playrec_calls = 0
        self._device_info = self._query_device()

    # -- availability and identity ------------------------------------------------------
    @classmethod
    def check_available(cls, options: Mapping[str, Any]) -> None:
        """Raise MissingDependency (no PortAudio) or ConfigError (no such device)."""
        sd = load_sounddevice()
        device = options.get("device")
        if device is not None:
            try:
                sd.query_devices(device)
            except (ValueError, sd.PortAudioError) as exc:
                raise ConfigError(f"no sound device matching {device!r}: {exc}") from None

    def _query_device(self) -> dict[str, Any]:
        try:
            if self.device is None:
                info = self._sd.query_devices(kind="output")
            else:
                info = self._sd.query_devices(self.device)
        except ValueError as exc:  # sounddevice's "No device matching ..."
            raise ConfigError(
                f"{self.label}: no sound device matching {self.device!r}: {exc}"
            ) from None
        info = dict(info)
        for kind, channels in (("output", self._outputs_used()), ("input", self._inputs_used())):
            limit = int(info.get(f"max_{kind}_channels", 0))
            if max(channels) > limit:
                raise ConfigError(
                    f"{self.label}: {kind} channel {max(channels)} does not exist on "
                    f"'{info.get('name', '?')}', which has {limit} {kind} channels"
                )
        return info

    def _outputs_used(self) -> list[int]:
        return sorted({*self.output_channels.values(), self.loopback[0]})

    def _inputs_used(self) -> list[int]:
        return sorted({*self.input_channels.values(), self.loopback[1]})

    def identity(self) -> dict[str, str]:
        hostapi = ""
        query_hostapis = getattr(self._sd, "query_hostapis", None)
        if query_hostapis is not None and "hostapi" in self._device_info:
            hostapi = str(query_hostapis(self._device_info["hostapi"]).get("name", ""))
        return {
            "maker": hostapi,
            "model": str(self._device_info.get("name", "")),
            "serial": "",
            "firmware": "",
        }

    # -- settings -------------------------------------------------------------------------
    @property
    def output_level(self) -> float:
        return self._output_level

    @output_level.setter
    def output_level(self, value: float) -> None:
        self._output_level = self.check("output_level", value)

    @property
    def samplerate(self) -> int:
        return self._samplerate

    @samplerate.setter
    def samplerate(self, value: int) -> None:
        self._samplerate = self.check("samplerate", value)

    @property
    def max_latency_s(self) -> float:
        return self._max_latency_s

    @max_latency_s.setter
    def max_latency_s(self, value: float) -> None:
        self._max_latency_s = self.check("max_latency_s", value)

    @property
    def pad_samples(self) -> int:
        """Silence appended to every aligned measurement, so the delayed end is still recorded."""
        return int(math.ceil(self._max_latency_s * self._samplerate))

    @property
    def sync_mark(self) -> np.ndarray:
        key = (self._samplerate, self._sync_s)
        if getattr(self, "_mark_key", None) != key:
            self._mark, self._mark_key = sync_mark(*key), key
        return self._mark

    @property
    def sync_samples(self) -> int:
        return int(round(self._sync_s * self._samplerate))

    def _channel(self, channel: str | int, table: dict[str, int], kind: str) -> int:
        if isinstance(channel, str):
            if channel not in table:
                raise ConfigError(
                    f"{self.label}: no {kind} named '{channel}' (have: {', '.join(table)})"
                )
            return table[channel]
        return int(channel)

    # -- excitation helpers at this card's sample rate ------------------------------------
    def multitone(self, tones_hz, amplitudes, duration_s, phases="newman", fade_s=0.005):
        """See :func:`excitation.multitone`."""
        return excitation.multitone(
            tones_hz, amplitudes, duration_s, self._samplerate, phases, fade_s
        )

    def exponential_sweep(self, f_start_hz, f_stop_hz, duration_s, amplitude=1.0, fade_s=0.005):
        """See :func:`excitation.exponential_sweep`."""
        return excitation.exponential_sweep(
            f_start_hz, f_stop_hz, duration_s, self._samplerate, amplitude, fade_s
        )

    # -- playing and recording ------------------------------------------------------------
    def playrec(
        self,
        signal: np.ndarray,
        out_channel: str | int = "speaker",
        in_channel: str | int = "mic",
        loopback_signal: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Play ``signal`` (full-scale units, times ``output_level``) on one output while recording
        one input and the loopback input, sample-synchronously. Returns the raw, *unaligned*
        ``(response, loopback)``. The loopback output plays ``loopback_signal`` (default: the
        same signal) when it is a separate channel.
        """
        out_ch = self._channel(out_channel, self.output_channels, "output")
        in_ch = self._channel(in_channel, self.input_channels, "input")
        loop_out, loop_in = self.loopback
        if in_ch == loop_in:
            raise ConfigError(f"{self.label}: input {in_ch} is the loopback input")
        columns = {out_ch: self._checked(signal, "signal")}
        if loop_out != out_ch:
            extra = signal if loopback_signal is None else loopback_signal
            columns[loop_out] = self._checked(extra, "loopback signal")
        lengths = {len(c) for c in columns.values()}
        if len(lengths) != 1:
            raise ValueError(f"{self.label}: signal and loopback signal differ in length")
        level = self._output_level
        data = np.column_stack([columns[ch] * level for ch in columns]).astype(np.float32)
        recorded = self._call_backend(
            "playrec",
            data,
            samplerate=self._samplerate,
            input_mapping=[in_ch, loop_in],
            output_mapping=list(columns),
            device=self.device,
            blocking=True,
            dtype="float32",
        )
        self.playrec_calls += 1
        recorded = np.asarray(recorded)
        self.data_hooks("waveform", recorded[:, 0])
        return recorded[:, 0], recorded[:, 1]

    def measure(
        self, signal: np.ndarray, out_channel: str | int = "speaker", in_channel: str | int = "mic"
    ) -> np.ndarray:
        """Play ``signal`` and return the recorded response aligned to its first sample.

        A sync mark is played on the loopback output just before the signal (on the speaker
        too, when the loopback taps the speaker's channel), silence follows it, and the
        loopback's copy of the mark gives this call's latency (``last_latency_samples``).
        """
        if self._output_level <= 0:
            raise InstrumentError(
                f"{self.label}: the output is muted (output_level=0), so nothing can be measured; "
                "raise output_level (station settings or the GUI), within the lab limit"
            )
        signal = np.asarray(signal, np.float64)
        mark, pad = self.sync_mark, np.zeros(self.pad_samples)
        out_ch = self._channel(out_channel, self.output_channels, "output")
        lead = mark if self.loopback[0] == out_ch else np.zeros(len(mark))
        response, loop = self.playrec(
            np.concatenate([lead, signal, pad]),
            out_ch,
            in_channel,
            loopback_signal=np.concatenate([mark, signal, pad]),
        )
        latency = find_latency(mark, loop, self.pad_samples, what=f"{self.label}: ")
        self.last_latency_samples = latency
        start = latency + len(mark)
        return response[start : start + len(signal)]

    def _checked(self, signal: Any, what: str) -> np.ndarray:
        signal = np.asarray(signal, np.float64)
        if signal.ndim != 1 or signal.size == 0:
            raise ValueError(f"{self.label}: the {what} must be a non-empty 1-D array of samples")
        if not np.all(np.isfinite(signal)):
            raise LimitError(f"{self.label}: the {what} contains NaN or Inf; nothing was played")
        peak = float(np.max(np.abs(signal)))
        if peak > 1.0:
            raise LimitError(
                f"{self.label}: the {what} peaks at {peak:.3g} FS, above the DAC's full scale of 1 "
                "(it would clip); scale it down, the output level is set separately"
            )
        return signal

    def _call_backend(self, name: str, *args: Any, **kwargs: Any) -> Any:
        error_type = getattr(self._sd, "PortAudioError", None) or ()
        try:
            return getattr(self._sd, name)(*args, **kwargs)
        except error_type as exc:
            text = str(exc)
            if "timed out" in text.lower() or "timeout" in text.lower():
                raise InstrumentTimeout(
                    f"{self.label}: the sound card stopped responding: {text}"
                ) from exc
            if any(marker in text.lower() for marker in LOST_MARKERS):
                raise DeviceLost(
                    f"{self.label}: the sound card is gone ({text}); check its USB cable and power"
                ) from exc
            raise InstrumentError(f"{self.label}: sound card error: {text}") from exc

    # -- safety -------------------------------------------------------------------------
    def safe_state(self) -> None:
        """Mute: output level 0, then stop any stream that is still playing."""
        self._output_level = 0.0  # bypasses the lab limit on purpose: silence is always safe
        if self._sd is not None:
            self._sd.stop()

    def close(self) -> None:
        try:
            self.safe_state()
        finally:
            self._sd = None

    def __repr__(self) -> str:
        return f"SoundCard({self.label!r}, device={self.device!r}, {self._samplerate} Hz)"
