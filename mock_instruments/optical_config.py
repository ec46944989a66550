"""The ``bench.simulation`` section of an optical station, validated, with its defaults.

Only the simulator reads this section; what describes the set-up itself (macropixels,
camera ROI, pooling) is ``bench.layout`` and is shared with real benches. Unknown keys
are refused, so a typo never silently runs a different simulation.

Keys (defaults in brackets)::

    seed [1]                    every random stream derives from it
    medium [iid]                iid | fiber
    modes [300]                 fibre guided modes
    na [iid: 1.0, fiber: auto]  input NA as a fraction of the SLM cell grid's Nyquist
    drift_per_s [0]             TM decorrelation rate: corr(T(t), T(0)) = exp(-rate·t)
    global_phase_drift_per_s [0]  RMS signal/reference phase walk after 1 s (rad), ∝ sqrt(t)
    drift_step_s [auto]         drift grid; auto gives ~1 % decorrelation per step
    lut_nonlinearity [0.02]     rad, smooth error of the SLM's grey -> phase response
    lc_settle_s [SLM's settle_time_s]  the panel's true settling time
    light: {flux_e_per_s [1e6]} electrons per second per pixel at mean speckle intensity
    noise: {shot [true], read_e [5], dark_e_per_s [0], full_well_e [10000], bits [12],
            black_level_adu [0], snr_db, snr_exposure_s}
           or "off" (no shot/read/dark noise, 16 bit, and no drift: SCIENCE.md S1's
           "without noise") or "snr20" (= {snr_db: 20}). snr_db sets the flux so that at
           snr_exposure_s (default: the camera's initial exposure) the mean speckle
           intensity is 10**(snr_db/20) times the noise's standard deviation.
    camera: {sensor [W, H], exposure_s [the camera's exposure_s option, else 0.002],
             readout_s [0.005], pixel_format}
    slm_display [memory]        memory | offscreen (the real Qt window, read back)
    clock [fast]                fast (virtual) | real-time (wall clock, really waits)
    transport [full]            full (drivers) | direct (the bench calls the world, batched)
    faults: {camera_stall_after_frames, nan_after_frames, saturate, drift_multiplier}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from labpnn.errors import ConfigError
from labpnn.mock_instruments.physics.sensor import SensorModel

KEYS = {
    "seed", "medium", "modes", "na", "drift_per_s", "global_phase_drift_per_s", "drift_step_s",
    "lut_nonlinearity", "lc_settle_s", "light", "noise", "camera", "slm_display", "clock",
    "transport", "faults",
}  # fmt: skip
NOISE_KEYS = {
    "shot", "read_e", "dark_e_per_s", "full_well_e", "bits", "black_level_adu", "snr_db",
    "snr_exposure_s",
}  # fmt: skip
FAULT_KEYS = {"camera_stall_after_frames", "nan_after_frames", "saturate", "drift_multiplier"}
CAMERA_KEYS = {"sensor", "exposure_s", "readout_s", "pixel_format"}


@dataclass
class Faults:
    camera_stall_after_frames: int | None = None
    nan_after_frames: int | None = None
    saturate: bool = False
    drift_multiplier: float = 1.0


@dataclass
class OpticalSimConfig:
    seed: int = 1
    medium: str = "iid"
    modes: int = 300
    na: float | None = None
    drift_per_s: float = 0.0
    global_phase_drift_per_s: float = 0.0
    drift_step_s: float = 1.0
    lut_nonlinearity: float = 0.02
    lc_settle_s: float | None = None
    flux_e_per_s: float = 1e6
    sensor: SensorModel = field(default_factory=SensorModel)
    bits: int = 12
    sensor_size: tuple[int, int] | None = None
    exposure_s: float = 2e-3
    readout_s: float = 5e-3
    slm_display: str = "memory"
    clock: str = "fast"
    transport: str = "full"
    faults: Faults = field(default_factory=Faults)


def _section(raw: Any, name: str, keys: set[str]) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{name} must be a mapping, got {raw!r}")
    unknown = set(raw) - keys
    if unknown:
        raise ConfigError(
            f"{name}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(keys))}"
        )
    return dict(raw)


def _noise(raw: Any) -> tuple[dict[str, Any], bool]:
    """(noise mapping, noise_off) from a mapping, a preset name, or a YAML boolean."""
    if raw is False or (isinstance(raw, str) and raw.lower() in ("off", "none")):
        return {"shot": False, "read_e": 0.0, "dark_e_per_s": 0.0, "bits": 16}, True
    if raw is None or raw is True or raw == "on":
        return {}, False
    if isinstance(raw, str) and raw.lower().startswith("snr"):
        try:
            return {"snr_db": float(raw[3:])}, False
        except ValueError:
            pass
    if isinstance(raw, str):
        raise ConfigError(f"simulation.noise: '{raw}' is not off, on, snr<dB> or a mapping")
    return _section(raw, "simulation.noise", NOISE_KEYS), False


def mean_electrons_for_snr(snr_db: float, read_e: float, shot: bool) -> float:
    """Mean speckle electrons m with m / sqrt(shot + read²) = 10**(snr_db / 20)."""
    s = 10 ** (snr_db / 20)
    if shot:
        return (s * s + math.sqrt(s**4 + 4 * s * s * read_e**2)) / 2
    if read_e <= 0:
        raise ConfigError("simulation.noise: snr_db needs shot noise or read_e > 0")
    return s * read_e


def parse_simulation(
    raw: Mapping[str, Any] | None, camera_exposure_s: float | None = None
) -> OpticalSimConfig:
    """``camera_exposure_s``: the camera driver's configured exposure, the default for
    ``camera.exposure_s`` and ``noise.snr_exposure_s``."""
    sim = _section(raw or {}, "simulation", KEYS)
    cfg = OpticalSimConfig()
    cfg.seed = int(sim.get("seed", 1))
    cfg.medium = str(sim.get("medium", "iid"))
    if cfg.medium not in ("iid", "fiber", "fibre"):
        raise ConfigError(f"simulation.medium: '{cfg.medium}' is not one of iid, fiber")
    cfg.modes = int(sim.get("modes", 300))
    cfg.na = None if sim.get("na") is None else float(sim["na"])
    cfg.lut_nonlinearity = float(sim.get("lut_nonlinearity", 0.02))
    cfg.lc_settle_s = None if sim.get("lc_settle_s") is None else float(sim["lc_settle_s"])

    faults = _section(sim.get("faults"), "simulation.faults", FAULT_KEYS)
    cfg.faults = Faults(
        camera_stall_after_frames=faults.get("camera_stall_after_frames"),
        nan_after_frames=faults.get("nan_after_frames"),
        saturate=bool(faults.get("saturate", False)),
        drift_multiplier=float(faults.get("drift_multiplier", 1.0)),
    )

    noise, noise_off = _noise(sim.get("noise"))
    drift = 0.0 if noise_off else float(sim.get("drift_per_s", 0.0))
    phase_walk = 0.0 if noise_off else float(sim.get("global_phase_drift_per_s", 0.0))
    cfg.drift_per_s = drift * cfg.faults.drift_multiplier
    cfg.global_phase_drift_per_s = phase_walk * math.sqrt(cfg.faults.drift_multiplier)
    rate = max(cfg.drift_per_s, cfg.global_phase_drift_per_s**2)
    auto_step = min(10.0, max(1e-3, 0.01 / rate)) if rate > 0 else 1.0
    cfg.drift_step_s = float(sim.get("drift_step_s") or auto_step)

    camera = _section(sim.get("camera"), "simulation.camera", CAMERA_KEYS)
    cfg.exposure_s = float(camera.get("exposure_s", camera_exposure_s or 2e-3))
    cfg.readout_s = float(camera.get("readout_s", 5e-3))
    if camera.get("sensor") is not None:
        w, h = (int(v) for v in camera["sensor"])
        cfg.sensor_size = (w, h)

    cfg.bits = int(noise.get("bits", 12))
    if cfg.bits not in (8, 12, 16):
        raise ConfigError(f"simulation.noise.bits: {cfg.bits} is not 8, 12 or 16")
    if camera.get("pixel_format"):
        cfg.bits = {"Mono8": 8, "Mono12": 12, "Mono16": 16}[str(camera["pixel_format"])]
    cfg.sensor = SensorModel(
        seed=cfg.seed,
        full_well_e=float(noise.get("full_well_e", 10_000.0)),
        read_e=float(noise.get("read_e", 5.0)),
        shot=bool(noise.get("shot", True)),
        dark_e_per_s=float(noise.get("dark_e_per_s", 0.0)),
        black_level_adu=float(noise.get("black_level_adu", 0.0)),
    )
    light = _section(sim.get("light"), "simulation.light", {"flux_e_per_s"})
    cfg.flux_e_per_s = float(light.get("flux_e_per_s", 1e6))
    if noise.get("snr_db") is not None:
        m = mean_electrons_for_snr(float(noise["snr_db"]), cfg.sensor.read_e, cfg.sensor.shot)
        cfg.flux_e_per_s = m / float(noise.get("snr_exposure_s", cfg.exposure_s))
    if cfg.faults.saturate:
        cfg.flux_e_per_s *= 1e4

    cfg.slm_display = str(sim.get("slm_display", "memory"))
    if cfg.slm_display not in ("memory", "offscreen"):
        raise ConfigError(f"simulation.slm_display: '{cfg.slm_display}' is not memory or offscreen")
    cfg.clock = str(sim.get("clock", "fast")).replace("_", "-").replace("realtime", "real-time")
    if cfg.clock not in ("fast", "real-time"):
        raise ConfigError(f"simulation.clock: '{cfg.clock}' is not fast or real-time")
    cfg.transport = str(sim.get("transport", "full"))
    if cfg.transport not in ("full", "direct"):
        raise ConfigError(f"simulation.transport: '{cfg.transport}' is not full or direct")
    return cfg
