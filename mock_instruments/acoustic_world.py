"""The simulated acoustic bench: one sound card whose speaker and microphone share one cavity.

What a real bench adds around the cavity (``physics.acoustics``) lives here: the sound
card's random loop latency on every call, microphone and loopback noise, the ADC (clipping
and quantisation), the loopback cable, slow drift of the room's sound speed, faults, and the
clock a playback takes on.

Every call gets its own random streams, seeded by ``(seed, call index)``. That is what lets
the batched ``measure_amplitudes`` (the ``direct`` transport) return exactly what the full
driver path returns for the same seed: both draw the same latency and the same microphone
noise for call *k*, and both compute the same steady state of the cavity.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from labpnn.clock import VirtualClock, WallClock, let_time_pass
from labpnn.errors import ConfigError, DeviceLost, InstrumentError, InstrumentTimeout, LimitError
from labpnn.excitation import MultitonePlan

from .physics.acoustics import AcousticCavity, CavityParams
from .sounddevice_sim import PortAudioError, SimulatedSoundDevice

SIMULATION_KEYS = {
    "seed", "clock", "transport", "cavity", "latency_samples", "noise", "adc_bits", "mic_gain",
    "loopback_gain", "stream_overhead_s", "drift_per_s", "drift_step_s", "wiring", "channels",
    "faults",
}  # fmt: skip
FAULT_KEYS = {
    "nan_after_calls",
    "hang_after_calls",
    "hang_s",
    "unplug_after_calls",
    "drift_multiplier",
}
MIC_STREAM, AUX_STREAM, DRIFT_STREAM = 1, 2, 0xD1F7
HISTORY = 1000


def _first(channels: Any, name: str, default: int) -> int:
    if channels is None:
        return default
    if isinstance(channels, int):
        return channels
    return int(channels.get(name, next(iter(channels.values()))))


class AcousticWorld:
    """The acoustic cavity, the sound card's converters and cables, and their clock."""

    def __init__(
        self,
        layout: Mapping[str, Any],
        simulation: Mapping[str, Any],
        instruments: Mapping[str, Any],
    ):
        sim = dict(simulation or {})
        unknown = sorted(set(sim) - SIMULATION_KEYS)
        if unknown:
            raise ConfigError(
                f"bench.simulation: unknown key(s) {', '.join(unknown)} for the acoustic bench "
                f"(known: {', '.join(sorted(SIMULATION_KEYS))})"
            )
        self.seed = int(sim.get("seed", 0))
        mode = sim.get("clock", "fast")
        if mode not in ("fast", "real-time"):
            raise ConfigError(f"bench.simulation.clock must be 'fast' or 'real-time', got {mode!r}")
        self.clock = VirtualClock() if mode == "fast" else WallClock()
        self._t0 = self.clock.now()
        self.plan = MultitonePlan.from_layout(layout)
        self.samplerate = self.plan.samplerate
        try:
            params = CavityParams.from_config(
                dict(sim.get("cavity") or {}), samplerate=self.samplerate, seed=self.seed
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bench.simulation.cavity: {exc}") from None
        self.cavity = AcousticCavity(params)
        ring = 2 * (self.cavity.ir_length - 1)
        if self.plan.n_settle < ring:
            raise ConfigError(
                f"layout.settle_s={self.plan.settle_s:g} s is shorter than the time this cavity needs "
                f"to settle through its membranes ({ring / self.samplerate:.3f} s): the tones would be "
                "read before the steady state; lengthen settle_s"
            )
        noise = dict(sim.get("noise") or {})
        if set(noise) - {"mic_rms_fs", "loopback_rms_fs"}:
            raise ConfigError(
                f"bench.simulation.noise: unknown key(s) {', '.join(sorted(noise))}; "
                "known: mic_rms_fs, loopback_rms_fs"
            )
        self.mic_noise_fs = float(noise.get("mic_rms_fs", 1e-3))
        self.loopback_noise_fs = float(noise.get("loopback_rms_fs", 1e-5))
        self.latency_range = tuple(int(v) for v in sim.get("latency_samples", (200, 2000)))
        self.adc_bits = int(sim.get("adc_bits", 24))
        self.mic_gain = float(sim.get("mic_gain", 1.0))
        self.loopback_gain = float(sim.get("loopback_gain", 0.5))
        self.stream_overhead_s = float(sim.get("stream_overhead_s", 0.01))
        self.drift_step_s = float(sim.get("drift_step_s", 10.0))
        self.faults = dict(sim.get("faults") or {})
        bad = sorted(set(self.faults) - FAULT_KEYS)
        if bad:
            raise ConfigError(f"bench.simulation.faults: unknown fault(s) {', '.join(bad)}")
        self.drift_per_s = float(sim.get("drift_per_s", 0.0)) * float(
            self.faults.get("drift_multiplier", 1.0)
        )
        self.device_channels = int(sim.get("channels", 8))
        self._configure_wiring(instruments, dict(sim.get("wiring") or {}))
        self.call_index = 0
        self.last_latency_samples: int | None = None
        self.latency_history: list[int] = []
        self._drivers: dict[str, Any] = {}
        self._interrupt = threading.Event()
        self._walk = np.zeros(1)

    def _configure_wiring(self, instruments: Mapping[str, Any], wiring: dict[str, Any]) -> None:
        """Which physical channel is cabled where; by default what the sound card's config says."""
        config = instruments.get("audio") or next(iter(instruments.values()), None)
        options = dict(getattr(config, "options", None) or {})
        loop = wiring.get("loopback", options.get("loopback", (2, 2)))
        self.speaker_channel = int(
            wiring.get("speaker", _first(options.get("output_channels"), "speaker", 1))
        )
        self.mic_channel = int(wiring.get("mic", _first(options.get("input_channels"), "mic", 1)))
        self.loopback_channels = (int(loop[0]), int(loop[1]))

    # -- what the station asks for ---------------------------------------------------------
    def driver_kwargs(self, role: str, options: Mapping[str, Any]) -> dict[str, Any]:
        return {"backend": SimulatedSoundDevice(self), "clock": self.clock}

    def wire(self, role: str, driver: Any) -> None:
        if int(getattr(driver, "samplerate", self.samplerate)) != self.samplerate:
            raise ConfigError(
                f"{role}: samplerate {driver.samplerate} differs from layout.samplerate {self.samplerate}"
            )
        pad = getattr(driver, "pad_samples", None)
        if pad is not None and self.latency_range[1] > pad:
            raise ConfigError(
                f"{role}: the simulated card's latency reaches {self.latency_range[1]} samples, more "
                f"than max_latency_s covers ({pad} samples); raise max_latency_s"
            )
        self._drivers[role] = driver

    def ground_truth(self) -> dict[str, Any]:
        return {
            "latency_samples": self.last_latency_samples,
            "latency_history": np.asarray(self.latency_history, dtype=np.int64),
            "calls": self.call_index,
            "samplerate": self.samplerate,
            "impulse_response": self.cavity.small_signal_impulse_response() * self.mic_gain,
            "mode_frequencies_hz": self.cavity.mode_frequencies_hz,
            "tones_hz": np.asarray(self.plan.tones_hz),
            "small_signal_transfer": self.cavity.small_signal_transfer(self.plan.tones_hz)
            * self.mic_gain,
            "speed_factor": self.cavity.speed_factor,
        }

    def elapse(self, seconds: float) -> None:
        """Let ``seconds`` pass with the bench idle: the sound speed walks on (seeded by step)."""
        self._t0 = let_time_pass(self.clock, self._t0, seconds)

    def state_dict(self) -> dict[str, Any]:
        return {
            "call_index": int(self.call_index),
            "elapsed_s": float(self.clock.now() - self._t0),
            "last_latency_samples": -1
            if self.last_latency_samples is None
            else int(self.last_latency_samples),
            "latency_history": np.asarray(self.latency_history, dtype=np.int64),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.call_index = int(state["call_index"])
        if isinstance(self.clock, VirtualClock):
            self.clock.t = self._t0 + float(state["elapsed_s"])
        else:
            self._t0 = self.clock.now() - float(state["elapsed_s"])
        last = int(state.get("last_latency_samples", -1))
        self.last_latency_samples = None if last < 0 else last
        self.latency_history = [int(v) for v in np.asarray(state.get("latency_history", []))]

    def interrupt(self) -> None:
        """``sounddevice.stop()``: abort a playback that hangs."""
        self._interrupt.set()

    def close(self) -> None:
        self.interrupt()
        self._drivers.clear()

    # -- per-call randomness, converters, drift ---------------------------------------------
    def _rng(self, call: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, int(call), stream])

    def _latency(self, aux: np.random.Generator) -> int:
        lo, hi = self.latency_range
        return int(aux.integers(lo, hi + 1))  # always the first draw of a call's aux stream

    def _adc(self, x: np.ndarray) -> np.ndarray:
        """Clip at full scale and quantise to the ADC's bits."""
        step = 2.0 ** (1 - self.adc_bits)
        return np.clip(np.round(x / step) * step, -1.0, 1.0 - step)

    def _speed_factor(self, t: float) -> float:
        """Relative sound speed at time ``t``: a seeded random walk, stepped every drift_step_s."""
        if self.drift_per_s == 0:
            return 1.0
        step = max(int((t - self._t0) // self.drift_step_s), 0)
        while len(self._walk) <= step:
            block = len(self._walk) // 1024
            z = np.random.default_rng([self.seed, DRIFT_STREAM, block]).standard_normal(1024)
            self._walk = np.concatenate([self._walk, self._walk[-1] + np.cumsum(z)])
        return 1.0 + self.drift_per_s * math.sqrt(self.drift_step_s) * float(self._walk[step])

    def _fault(self, call: int) -> tuple[str, str] | None:
        unplug = self.faults.get("unplug_after_calls")
        if unplug is not None and call >= int(unplug):
            return "lost", "Error opening Stream: Device unavailable [PaErrorCode -9985]"
        hang = self.faults.get("hang_after_calls")
        if hang is not None and call >= int(hang):
            return "hang", "Stream timed out: no audio frames for too long [PaErrorCode -9987]"
        return None

    def _hang(self) -> str:
        self._interrupt.clear()
        hang_s = float(self.faults.get("hang_s", 60.0))
        waited = self._interrupt.wait(hang_s)
        self.clock.sleep(0 if isinstance(self.clock, WallClock) else hang_s)
        return "Stream aborted by stop() [PaErrorCode -9983]" if waited else ""

    def _call_duration_s(self, frames: int) -> float:
        return frames / self.samplerate + self.stream_overhead_s

    def _finish(self, call: int, latency: int) -> None:
        self.last_latency_samples = latency
        self.latency_history.append(latency)
        del self.latency_history[:-HISTORY]
        self.call_index = call + 1

    # -- the full path: one playback through the sound-card back-end ----------------------------
    def record(self, outputs: Mapping[int, np.ndarray], input_mapping: list[int]) -> np.ndarray:
        """What ``input_mapping``'s channels record while ``outputs`` (channel -> samples) play."""
        call = self.call_index
        fault = self._fault(call)
        if fault is not None:
            kind, message = fault
            if kind == "hang":
                message = self._hang() or message
            self.call_index = call + 1
            raise PortAudioError(message)
        start = self.clock.now()
        n = len(next(iter(outputs.values())))
        self.cavity.set_speed_factor(self._speed_factor(start))
        aux = self._rng(call, AUX_STREAM)
        latency = self._latency(aux)
        speaker = outputs.get(self.speaker_channel)
        pressure = self.cavity.respond(speaker) if speaker is not None else np.zeros(n)
        mic = self._rng(call, MIC_STREAM).standard_normal(n)
        mic = self._adc(self.mic_gain * pressure + self.mic_noise_fs * mic)
        if self._nan(call):
            mic[:] = np.nan
        loop_out, loop_in = self.loopback_channels
        loop = outputs.get(loop_out, np.zeros(n)) * self.loopback_gain
        loop = self._adc(loop + self.loopback_noise_fs * aux.standard_normal(n))
        columns = []
        for ch in input_mapping:
            if ch == self.mic_channel:
                source, sigma = mic, self.mic_noise_fs
            elif ch == loop_in:
                source, sigma = loop, self.loopback_noise_fs
            else:  # an unconnected input hears its own preamp noise
                source = self._adc(self.mic_noise_fs * aux.standard_normal(n))
                sigma = self.mic_noise_fs
            recorded = np.empty(n)
            recorded[:latency] = self._adc(sigma * aux.standard_normal(min(latency, n)))
            recorded[latency:] = source[: max(n - latency, 0)]
            columns.append(recorded)
        self._finish(call, latency)
        self.clock.sleep_until(start + self._call_duration_s(n))
        return np.column_stack(columns).astype(np.float32)

    def _nan(self, call: int) -> bool:
        after = self.faults.get("nan_after_calls")
        return after is not None and call >= int(after)

    # -- the direct path: a batch of multi-tone measurements in one go ------------------------
    def _sound_card(self) -> Any:
        if not self._drivers:
            raise ConfigError(
                "the acoustic world has no wired sound card (connect the station first)"
            )
        return self._drivers.get("audio") or next(iter(self._drivers.values()))

    def _check_cabling(self, card: Any) -> None:
        """The direct path skips the cables, so it refuses a config the full path would fail on."""
        expected = (self.speaker_channel, self.mic_channel, self.loopback_channels)
        actual = (
            card.output_channels.get("speaker", next(iter(card.output_channels.values()))),
            card.input_channels.get("mic", next(iter(card.input_channels.values()))),
            tuple(card.loopback),
        )
        if actual != expected:
            raise ConfigError(
                f"{card.label}: the driver's channels (speaker, mic, loopback) {actual} are not the "
                f"simulated bench's cabling {expected}; the full transport would record silence"
            )

    def measure_amplitudes(self, amplitudes: np.ndarray) -> np.ndarray:
        """Tone amplitudes (FS) the microphone records for each row of tone amplitudes ``[B, n_tones]``.

        ``amplitudes`` are in full-scale units as passed to ``MultitonePlan.signal`` (before the
        card's ``output_level``). The result equals what ``SoundCard.measure`` of the plan's
        burst, cut to the plan's window and read at the tones, gives for the same calls; the
        clock, the call counter and the latency history advance as they would there.
        """
        plan = self.plan
        amps = np.atleast_2d(np.asarray(amplitudes, np.float64))
        if amps.ndim != 2 or amps.shape[1] != plan.n_tones:
            raise ValueError(f"expected amplitudes [batch, {plan.n_tones}], got {amps.shape}")
        card = self._sound_card()
        self._check_cabling(card)
        level = float(card.output_level)
        if level <= 0:
            raise InstrumentError(
                f"{card.label}: the output is muted (output_level=0), so nothing can be measured"
            )
        periods = plan.period(amps)
        peaks = np.max(np.abs(periods), axis=1)
        if not np.all(np.isfinite(peaks)) or np.any(peaks > 1.0):
            raise LimitError(
                f"{card.label}: a burst peaks above the DAC's full scale of 1 or is not finite; "
                "nothing was played"
            )
        drive = (periods * level).astype(np.float32).astype(np.float64)
        frames = card.sync_samples + plan.n_samples + card.pad_samples
        duration = self._call_duration_s(frames)
        start_src = card.sync_samples + plan.window_start
        first = self.call_index
        n_ok = len(amps)
        for i in range(len(amps)):
            if self._fault(first + i) is not None:
                n_ok = i
                break
        start = self.clock.now()
        out = np.empty((n_ok, plan.n_tones))
        factors = np.array([self._speed_factor(start + i * duration) for i in range(n_ok)])
        edges = np.flatnonzero(np.diff(factors)) + 1
        for lo, hi in zip(np.r_[0, edges], np.r_[edges, n_ok]):
            if hi <= lo:
                continue
            self.cavity.set_speed_factor(factors[lo])
            pressure = self.cavity.respond_periodic(drive[lo:hi])
            for i in range(lo, hi):
                call = first + i
                latency = self._latency(self._rng(call, AUX_STREAM))
                noise = self._rng(call, MIC_STREAM).standard_normal(start_src + plan.n_window)
                mic = self._adc(
                    self.mic_gain * pressure[i - lo] + self.mic_noise_fs * noise[start_src:]
                )
                window = mic.astype(np.float32)
                out[i] = np.nan if self._nan(call) else plan.tone_amplitudes(window)
                self._finish(call, latency)
        self.clock.sleep_until(start + n_ok * duration)
        if n_ok < len(amps):
            kind, message = self._fault(self.call_index)
            if kind == "hang":
                message = self._hang() or message
            self.call_index += 1
            error = DeviceLost if kind == "lost" else InstrumentTimeout
            raise error(f"{card.label}: {message}")
        return out
