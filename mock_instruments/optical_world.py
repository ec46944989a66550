"""The simulated optical bench: one SLM, one medium, one camera, one clock.

The world owns the clock, the medium (with its drift), the SLM panel's history and the
camera device, and serves the *real* drivers:

* the SLM driver gets ``display=`` (``memory`` or ``offscreen``) and ``clock=``; the world
  registers a present hook on it (:meth:`wire`) and so sees every frame the driver
  presented, with its presentation time;
* the camera driver gets ``backend=``: a harvesters-shaped (``GenICamCamera``) or
  pypylon-shaped (``BaslerCamera``) object over :class:`SimCameraCore`, whose frames the
  world renders at fetch time from the exposure window, the LC settling and the medium.

That is the ``full`` path. :meth:`measure_phases` is the batched ``direct`` path for long
studies: it computes the same frames for settled SLM patterns, with the same noise
(seeded per frame index) and drift (seeded per drift step), and advances the clock to
where the bench's pipelined acquisition would have left it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from labpnn.clock import VirtualClock, WallClock, let_time_pass
from labpnn.errors import ConfigError, InstrumentTimeout
from labpnn.mock_instruments.optical_config import parse_simulation
from labpnn.mock_instruments.physics.lc_settling import LCResponse
from labpnn.mock_instruments.physics.optics import (
    GlobalPhaseDrift,
    SLMGeometry,
    make_medium,
    slm_phase_lut,
)
from labpnn.mock_instruments.sim_camera import SimCameraCore
from labpnn.mock_instruments.sim_harvesters import SimHarvester
from labpnn.mock_instruments.sim_pylon import SimPylon

STATE_FORMAT = "labpnn.optical-world/1"


def next_presentation(t: float, refresh_hz: float, latency_s: float) -> float:
    """The first vsync strictly after ``t``, plus the panel latency (as ScreenSLM computes it)."""
    return (math.floor(t * refresh_hz) + 1) / refresh_hz + latency_s


def phase_to_grey(phase_rad: np.ndarray) -> np.ndarray:
    """Linear wrap 0..2π -> 0..255 (ScreenSLM's mapping without a user LUT)."""
    grey = np.floor(np.mod(phase_rad, 2 * np.pi) * (256 / (2 * np.pi)) + 0.5)
    return (grey.astype(np.int64) % 256).astype(np.uint8)


def _roles(instruments: Mapping[str, Any]) -> tuple[str, str]:
    def find(word: str) -> str:
        roles = [r for r, i in instruments.items() if f".{word}." in f".{i.driver.lower()}."]
        if len(roles) != 1:
            raise ConfigError(
                f"an optical bench needs exactly one {word} instrument (a labpnn.drivers."
                f"{word} driver); found {len(roles)}: {', '.join(roles) or 'none'}"
            )
        return roles[0]

    return find("slm"), find("camera")


class OpticalWorld:
    def __init__(self, layout: Mapping[str, Any], simulation: Mapping[str, Any], instruments):
        self.slm_role, self.camera_role = _roles(instruments)
        camera = instruments[self.camera_role]
        self.cfg = cfg = parse_simulation(simulation, camera.options.get("exposure_s"))
        self.layout = dict(layout)
        slm = instruments[self.slm_role].options
        w, h = (int(v) for v in slm.get("resolution", (512, 512)))
        self.geometry = SLMGeometry.from_layout(layout, (h, w))
        self.lit = tuple(int(v) for v in layout.get("camera_roi", (0, 0, 64, 64)))
        lx, ly, lw, lh = self.lit
        sensor = cfg.sensor_size or (lx + lw, ly + lh)
        if lx < 0 or ly < 0 or lx + lw > sensor[0] or ly + lh > sensor[1]:
            raise ConfigError(f"layout.camera_roi {list(self.lit)} is outside the {sensor} sensor")
        self._active = self.geometry.active_mask.reshape(-1)
        self.medium = make_medium(
            cfg.medium, cfg.seed, (lh, lw), self.geometry.cells, self._active, cfg.modes, cfg.na
        )
        self.lut = slm_phase_lut(cfg.seed, cfg.lut_nonlinearity)
        self.phasor = np.exp(1j * self.lut)
        self.clock = VirtualClock() if cfg.clock == "fast" else WallClock()
        self.t0 = self.clock.now()
        self.slm_timing = {
            "settle_s": float(slm.get("settle_time_s", 0.01)),
            "refresh_hz": float(slm.get("refresh_hz", 60.0)),
            "latency_s": float(slm.get("latency_s", 0.0)),
        }
        settle = cfg.lc_settle_s if cfg.lc_settle_s is not None else self.slm_timing["settle_s"]
        self.lc = LCResponse(np.full(self.geometry.n_cells, self.phasor[0]), settle)
        self.global_phase = GlobalPhaseDrift(cfg.seed)
        self.frame_index = 0
        self._camera_sdk = "pylon" if "basler" in camera.driver.lower() else "harvesters"
        self.camera = SimCameraCore(
            self._render,
            self.clock,
            serial=str(camera.options.get("serial", "sim-0")),
            sensor=sensor,
            roi=self.lit,
            pixel_format=f"Mono{cfg.bits}",
            exposure_s=cfg.exposure_s,
            readout_s=cfg.readout_s,
            stalled=self._stalled,
        )

    # -- station contract -------------------------------------------------------------
    def driver_kwargs(self, role: str, options: Mapping[str, Any]) -> dict[str, Any]:
        if role == self.slm_role:
            return {"display": self.cfg.slm_display, "clock": self.clock}
        if role == self.camera_role:
            sdk = SimPylon if self._camera_sdk == "pylon" else SimHarvester
            return {"backend": sdk(self.camera), "clock": self.clock}
        return {}

    def wire(self, role: str, driver: Any) -> None:
        if role == self.slm_role:
            driver.add_present_hook(self._on_present)

    def close(self) -> None:
        self.camera.stop()

    # -- physics ----------------------------------------------------------------------
    def _on_present(self, grey: np.ndarray, t_present: float) -> None:
        if grey.shape != self.geometry.shape:
            raise ConfigError(
                f"the SLM presented a {grey.shape} image; the world expects {self.geometry.shape}"
            )
        self.lc.present(t_present, self.geometry.input_field(grey, self.phasor))

    def _advance_drift(self, t: float) -> None:
        dt = self.cfg.drift_step_s
        step = max(0, math.floor((t - self.t0) / dt))
        self.medium.advance_to(step, self.cfg.drift_per_s * dt)
        self.global_phase.advance_to(step, self.cfg.global_phase_drift_per_s * math.sqrt(dt))

    def _intensity(self, act: np.ndarray, ref: np.ndarray) -> np.ndarray:
        """Macropixel [K, n_act] and reference [K, n_ref or 1] fields -> [K, lit px] intensity.

        The signal/reference phase drift multiplies the macropixels' field.
        """
        out = self.medium.propagate(act * np.exp(1j * self.global_phase.phase), ref)
        intensity = np.square(out.real)
        intensity += np.square(out.imag)
        return intensity

    def _split_fields(self, fields: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        act, ref = fields[:, self._active], fields[:, ~self._active]
        return act, (ref[:, :1] if (ref == ref[:, :1]).all() else ref)

    def _stalled(self) -> bool:
        n = self.cfg.faults.camera_stall_after_frames
        return n is not None and self.frame_index >= n

    def _to_adu(self, intensity, first_index, exposure_s, roi, bits, gain_db) -> np.ndarray:
        """Lit-region intensities [K, n_lit] -> ADU frames [K, h, w] of the camera ROI."""
        x, y, w, h = roi
        lx, ly, lw, lh = self.lit
        k = len(intensity)
        scale = self.cfg.flux_e_per_s * exposure_s
        if tuple(roi) == self.lit:
            mean_e = intensity.reshape(k, h, w) * scale
        else:
            mean_e = np.zeros((k, h, w))
            x0, x1, y0, y1 = max(x, lx), min(x + w, lx + lw), max(y, ly), min(y + h, ly + lh)
            if x0 < x1 and y0 < y1:
                lit = intensity.reshape(k, lh, lw)[:, y0 - ly : y1 - ly, x0 - lx : x1 - lx]
                mean_e[:, y0 - y : y1 - y, x0 - x : x1 - x] = lit * scale
        adu = self.cfg.sensor.digitize(mean_e, first_index, exposure_s, bits, gain_db)
        nan_after = self.cfg.faults.nan_after_frames
        if nan_after is not None and first_index + k > nan_after:
            adu[max(0, nan_after - first_index) :] = np.nan
        return adu

    def _render(self, t0: float, exposure_s: float, roi: tuple, bits: int, gain_db: float):
        """The full path: one exposure, integrating whatever the SLM did during it."""
        index = self.frame_index
        self.frame_index += 1
        self._advance_drift(t0)
        weights, fields = self.lc.exposure_fields(t0, exposure_s)
        intensity = weights @ self._intensity(*self._split_fields(fields))
        return self._to_adu(intensity[None], index, exposure_s, roi, bits, gain_db)[0]

    # -- direct path ------------------------------------------------------------------
    def _pipeline_times(self, n: int, settle_s: float, refresh_hz: float, latency_s: float):
        """Exposure starts, presentation times and the final clock of OpticalBench.acquire."""
        exposure = self.camera.values["ExposureTime"] * 1e-6
        readout = self.camera.readout_s
        c = self.clock.now()
        starts, presents = np.empty(n), np.empty(n)
        t_present = next_presentation(c, refresh_hz, latency_s)
        ready = t_present + settle_s
        c = max(c, ready)
        for i in range(n):
            starts[i], presents[i] = c, t_present
            end = c + exposure
            c = max(c, end)
            if i + 1 < n:
                t_present = next_presentation(c, refresh_hz, latency_s)
                ready = t_present + settle_s
            c = max(c, end + readout)
            if i + 1 < n:
                c = max(c, ready)
        return starts, presents, c

    def measure_phases(
        self,
        phases: np.ndarray,
        reference: float | np.ndarray = 0.0,
        *,
        settle_s: float | None = None,
        refresh_hz: float | None = None,
        latency_s: float | None = None,
    ) -> np.ndarray:
        """float [B, h, w] camera frames (ADU) for B settled macropixel patterns.

        ``phases`` is [B, ny, nx] in rad, or uint8 grey levels (what the SLM driver would
        display); ``reference`` is the reference border's phase (rad, or grey if uint8),
        scalar or per pattern. The frames equal those of ``OpticalBench.acquire`` on the
        full path with the same seed, and the clock ends where that would leave it.
        """
        phases = np.asarray(phases)
        grey = phases if phases.dtype == np.uint8 else phase_to_grey(phases)
        ny, nx = self.geometry.macropixels
        if grey.ndim == 2:
            grey = grey[None]
        if grey.shape[1:] != (ny, nx):
            raise ValueError(f"phases must be [B, {ny}, {nx}], got {list(phases.shape)}")
        n = len(grey)
        ref = np.asarray(reference)
        ref = ref if ref.dtype == np.uint8 else phase_to_grey(ref)
        ref = np.broadcast_to(ref, (n,))
        x, y, w, h = (self.camera.values[k] for k in ("OffsetX", "OffsetY", "Width", "Height"))
        frames = np.empty((n, h, w))
        if n == 0:
            return frames
        stall = self.cfg.faults.camera_stall_after_frames
        if stall is not None and self.frame_index + n > stall:
            raise InstrumentTimeout(
                f"simulated camera stalled after {stall} frames (fault camera_stall_after_frames)"
            )
        act = self.phasor[grey.reshape(n, -1)]
        ref = self.phasor[ref][:, None]
        t = self.slm_timing
        starts, presents, t_end = self._pipeline_times(
            n,
            t["settle_s"] if settle_s is None else settle_s,
            t["refresh_hz"] if refresh_hz is None else refresh_hz,
            t["latency_s"] if latency_s is None else latency_s,
        )
        exposure = self.camera.values["ExposureTime"] * 1e-6
        bits = int(self.camera.values["PixelFormat"][4:])
        gain, roi = self.camera.values["Gain"], (x, y, w, h)
        if self.cfg.drift_per_s or self.cfg.global_phase_drift_per_s:
            steps = np.maximum(0, np.floor((starts - self.t0) / self.cfg.drift_step_s))
        else:  # nothing drifts: one segment
            steps = np.zeros(n)
        i = 0
        while i < n:
            j = i + int(np.argmax(steps[i:] != steps[i])) if (steps[i:] != steps[i]).any() else n
            self._advance_drift(starts[i])
            intensity = self._intensity(act[i:j], ref[i:j])
            frames[i:j] = self._to_adu(intensity, self.frame_index, exposure, roi, bits, gain)
            self.frame_index += j - i
            i = j
        for k in range(max(0, n - 2), n):  # the panel is left showing the last pattern
            field = np.empty(self.geometry.n_cells, dtype=np.complex128)
            field[self._active], field[~self._active] = act[k], ref[k, 0]
            self.lc.present(float(presents[k]), field)
        self.clock.sleep_until(t_end)
        return frames

    # -- truth and checkpoints --------------------------------------------------------
    def ground_truth(self) -> dict[str, Any]:
        """What a perfect TM calibration would find now, on the pixels the camera sees.

        With the reference border at grey 0 and phases ``θ_k`` shown on the macropixels
        (row-major over ``macropixels``), the field on camera pixel ``p`` is
        ``E[p] = reference_field[p] + Σ_k tm_medium[p, k]·exp(iθ_k)`` (ideal linear LUT) and
        the camera reads ``adu_per_intensity·|E|²`` plus noise and black level.
        ``tm = conj(reference_field)[:, None] · tm_medium`` is SCIENCE.md S1's
        ``diag(s_ref)·T``: what 4-step phase stepping on the macropixels,
        ``(I0 - Iπ)/4 + i(I3π/2 - Iπ/2)/4``, measures (times ``adu_per_intensity``).
        Pixels are the camera ROI's overlap with the lit region, row-major
        (``pixel_roi`` = x, y, w, h).
        """
        self._advance_drift(self.clock.now())
        v = self.camera.values
        x, y, w, h = v["OffsetX"], v["OffsetY"], v["Width"], v["Height"]
        lx, ly, lw, lh = self.lit
        x0, x1, y0, y1 = max(x, lx), min(x + w, lx + lw), max(y, ly), min(y + h, ly + lh)
        rows, cols = np.meshgrid(np.arange(y0, y1) - ly, np.arange(x0, x1) - lx, indexing="ij")
        tm_all = self.medium.tm[(rows * lw + cols).reshape(-1)]
        zero = self.phasor[0]
        reference = tm_all[:, ~self._active].sum(axis=1) * zero
        signal = tm_all[:, self._active] * (np.exp(1j * self.global_phase.phase) * zero)
        bits = int(v["PixelFormat"][4:])
        adu = self.cfg.sensor.adu_per_electron(bits, v["Gain"])
        return {
            "tm": np.conj(reference)[:, None] * signal,
            "tm_medium": signal,
            "reference_field": reference,
            "macropixels": self.geometry.macropixels,
            "pixel_roi": (x0, y0, max(0, x1 - x0), max(0, y1 - y0)),
            "adu_per_intensity": self.cfg.flux_e_per_s * v["ExposureTime"] * 1e-6 * adu,
            "black_level_adu": self.cfg.sensor.black_level_adu,
            "phase_lut": self.lut.copy(),
            "global_phase_rad": self.global_phase.phase,
            "time_s": self.clock.now() - self.t0,
            "medium": self.medium.kind,
            "seed": self.cfg.seed,
        }

    def elapse(self, seconds: float) -> None:
        """Let ``seconds`` pass with the bench idle (between two runs): the medium and the
        signal/reference phase drift by that much in one exact jump, not step by step."""
        self.t0 = let_time_pass(self.clock, self.t0, seconds)
        dt = self.cfg.drift_step_s
        step = max(0, math.floor((self.clock.now() - self.t0) / dt))
        self.medium.jump_to(step, self.cfg.drift_per_s * dt)
        self.global_phase.jump_to(step, self.cfg.global_phase_drift_per_s * math.sqrt(dt))

    def state_dict(self) -> dict[str, Any]:
        """Clock, medium (with drift), signal/reference phase, SLM panel and frame counter.

        Noise and drift innovations are seeded by frame index and drift step, so these
        counters are the whole random state. Times are relative to the world's start.
        Save between acquisitions (a pending camera exposure is not saved).
        """
        state: dict[str, Any] = {
            "format": STATE_FORMAT,
            "seed": self.cfg.seed,
            "medium_kind": self.medium.kind,
            "time_s": self.clock.now() - self.t0,
            "frame_index": self.frame_index,
        }
        state.update({f"medium.{k}": v for k, v in self.medium.state_dict().items()})
        state.update({f"global_phase.{k}": v for k, v in self.global_phase.state_dict().items()})
        lc = self.lc.state_dict()
        state.update({"lc.t": lc["t"] - self.t0, "lc.old": lc["old"], "lc.new": lc["new"]})
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if str(state.get("format")) != STATE_FORMAT:
            raise ConfigError(f"not an optical world checkpoint (format {state.get('format')!r})")
        for key, mine in (("seed", self.cfg.seed), ("medium_kind", self.medium.kind)):
            if str(state[key]) != str(mine):
                raise ConfigError(
                    f"checkpoint was taken with {key}={state[key]}, this world has {key}={mine}"
                )
        if isinstance(self.clock, VirtualClock):
            self.clock.t = self.t0 + float(state["time_s"])
        else:
            self.t0 = self.clock.now() - float(state["time_s"])
        self.frame_index = int(state["frame_index"])
        self.medium.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("medium.")})
        self.global_phase.load_state_dict(
            {k[13:]: v for k, v in state.items() if k.startswith("global_phase.")}
        )
        lc = {
            "t": np.asarray(state["lc.t"]) + self.t0,
            "old": state["lc.old"],
            "new": state["lc.new"],
        }
        self.lc.load_state_dict(lc)
        self.camera.pending.clear()
