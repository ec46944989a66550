"""The microwave bench as a PhysicalLayer: features -> metasurface bits -> VNA sweep -> |S21|.

Encoding. Each of the ``n_features`` inputs is clipped to [0, 1] and quantised to
``bits_per_feature`` bits: level ``min(floor(x·2^k), 2^k - 1)``, written LSB first onto
consecutive metasurface elements (feature j drives elements ``j·k .. j·k + k - 1``). Inputs
outside [0, 1] saturate; scale your data into that range (the vowel preprocessing already
shifts features to be non-negative). Elements beyond ``n_features·k`` stay off. NaN inputs
are refused: they would otherwise be sent as an arbitrary configuration.

Sensing. One VNA sweep per sample (the configured grid, S21 only, or all four traces when a
two-port calibration is applied), then |S21| at the output frequencies: ``layout.frequencies_hz``
(nearest sweep points) or ``layout.n_outputs`` (default 20) evenly spaced sweep points.

Layout keys: ``n_bits`` (40), ``bits_per_feature`` (2), ``n_features`` (n_bits / bits per
feature), ``vna`` (``start_hz``, ``stop_hz``, ``points``, ``ifbw_hz``, ``power_dbm``),
``frequencies_hz`` or ``n_outputs``, ``settle_s`` (wait after each configuration, 2 ms).

``simulation.transport: direct`` measures through ``station.world.sweep_configs`` instead of
serial + sockets: same physics, timing and noise for the same seed, batched, in-process.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labpnn.bench.base import BenchLayer
from labpnn.drivers.vna.correction import calibration_ports
from labpnn.errors import ConfigError

DEFAULT_SWEEP = {
    "start_hz": 2.0e9,
    "stop_hz": 2.5e9,
    "points": 201,
    "ifbw_hz": 10e3,
    "power_dbm": -10.0,
}


def code_table(bits_per_feature: int) -> np.ndarray:
    """The bits written for each level: ``[2^k, k]``, row ``level`` LSB first."""
    levels = np.arange(2**bits_per_feature)
    return ((levels[:, None] >> np.arange(bits_per_feature)) & 1).astype(bool)


def quantise(x: np.ndarray, bits_per_feature: int) -> np.ndarray:
    """``[B, n_features]`` in [0, 1] -> bool ``[B, n_features·bits_per_feature]`` (LSB first)."""
    x = np.asarray(x, dtype=float)
    if np.isnan(x).any():
        raise ValueError("the microwave bench cannot encode NaN inputs")
    levels = 2**bits_per_feature
    level = np.minimum(np.floor(np.clip(x, 0.0, 1.0) * levels), levels - 1).astype(np.int64)
    return code_table(bits_per_feature)[level].reshape(x.shape[0], -1)


class MicrowaveBench(BenchLayer):
    """``y = |S21|(f_out)`` of the cavity for the metasurface configuration encoding ``x``."""

    def __init__(
        self,
        station: Any,
        vna_role: str = "vna",
        metasurface_role: str = "metasurface",
        calibration: Any = None,
    ):
        super().__init__(station)
        layout = station.bench.layout
        self.vna = station[vna_role]
        self.metasurface = station[metasurface_role]
        self.n_bits = int(layout.get("n_bits", getattr(self.metasurface, "n_bits", 40)))
        self.bits_per_feature = int(layout.get("bits_per_feature", 2))
        self.n_features = int(layout.get("n_features", self.n_bits // self.bits_per_feature))
        if self.bits_per_feature < 1 or self.n_features * self.bits_per_feature > self.n_bits:
            raise ConfigError(
                f"bench.layout: {self.n_features} features × {self.bits_per_feature} bits "
                f"do not fit on {self.n_bits} metasurface elements"
            )
        self.n_in = self.n_features
        self.settle_s = float(layout.get("settle_s", 2e-3))

        sweep = {**DEFAULT_SWEEP, **dict(layout.get("vna") or {})}
        self.vna.configure(**sweep)
        if calibration is not None:
            self.vna.apply_calibration(calibration)
        two_port_cal = calibration is not None and calibration_ports(calibration) == 2
        self.vna.define_traces(["S11", "S21", "S12", "S22"] if two_port_cal else ["S21"])
        self.vna.rf_on = True

        f = self.vna.frequencies_hz()
        if layout.get("frequencies_hz") is not None:
            wanted = np.asarray(layout["frequencies_hz"], dtype=float)
            if wanted.min() < f[0] or wanted.max() > f[-1]:
                raise ConfigError(
                    f"bench.layout.frequencies_hz must lie inside the sweep {f[0]:g}..{f[-1]:g} Hz"
                )
            self.output_index = np.abs(f[None, :] - wanted[:, None]).argmin(axis=1)
        else:
            n_out = int(layout.get("n_outputs", 20))
            if not 1 <= n_out <= len(f):
                raise ConfigError(f"bench.layout.n_outputs must be 1..{len(f)}, got {n_out}")
            self.output_index = np.linspace(0, len(f) - 1, n_out).round().astype(int)
        self.output_frequencies_hz = f[self.output_index]
        self.n_out = len(self.output_index)

    @property
    def input_code(self) -> np.ndarray:
        """What each input level is written as (:func:`code_table`); twins are fitted on it."""
        return code_table(self.bits_per_feature)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Inputs ``[B, n_features]`` -> configurations bool ``[B, n_bits]``."""
        bits = quantise(x, self.bits_per_feature)
        out = np.zeros((len(bits), self.n_bits), dtype=bool)
        out[:, : bits.shape[1]] = bits
        return out

    def measure(self, x: np.ndarray) -> np.ndarray:
        configs = self.encode(x)
        if self.direct:
            return self._measure_direct(configs)
        y = np.empty((len(configs), self.n_out))
        for k, config in enumerate(configs):
            self.metasurface.configuration = config
            self.clock.sleep(self.settle_s)
            y[k] = np.abs(self.vna.sweep_arrays()["S21"][self.output_index])
        return y

    def _measure_direct(self, configs: np.ndarray) -> np.ndarray:
        raw = self.station.world.sweep_configs(configs, settle_s=self.settle_s)
        y = np.empty((len(configs), self.n_out))
        for k in range(len(configs)):
            data = {p: raw[k, :, int(p[1]) - 1, int(p[2]) - 1] for p in self.vna.traces}
            y[k] = np.abs(self.vna.correct(data)["S21"][self.output_index])
        return y
