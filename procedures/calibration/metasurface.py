"""map-metasurface: how much the metasurface changes the cavity, against the noise.

Over random configurations, each swept several times, it measures the spread of
|S21| between configurations (what a physical layer can use), the spread between
repeats of one configuration (noise and drift), and their ratio per frequency. A bench
whose configurations are not distinguishable above the noise cannot learn anything.
"""

from __future__ import annotations

import numpy as np

from labpnn.bench.microwave import DEFAULT_SWEEP
from labpnn.procedure import Estimate, FloatParameter, IntegerParameter, LabProcedure
from labpnn.procedures.calibration.summary_docs import METASURFACE

S21_MAGNITUDE = "1 (linear |S21|)"


class MapMetasurface(LabProcedure):
    """Response statistics, repeatability and noise floor over random configurations."""

    name = "map-metasurface"
    bench_kinds = ("microwave",)
    roles = ("vna", "metasurface")
    default_station = "microwave-sim"
    watchdog_s = 120.0

    n_configs = IntegerParameter("Random configurations", default=40, minimum=2, maximum=100000)
    n_repeats = IntegerParameter("Sweeps per configuration", default=3, minimum=2, maximum=1000)
    settle_s = FloatParameter("Wait after setting a configuration", units="s", default=0.002,
                              minimum=0.0, maximum=10.0)  # fmt: skip
    seed = IntegerParameter("Seed", default=0, minimum=0, maximum=2**31 - 1)

    def _sweep(self) -> dict:
        return {**DEFAULT_SWEEP, **dict(self.station_config.bench.layout.get("vna") or {})}

    def estimate(self) -> Estimate:
        sweep = self._sweep()
        n = self.n_configs * self.n_repeats
        return Estimate(queries=n, seconds=n * (sweep["points"] / sweep["ifbw_hz"] * 1.2
                                                + self.settle_s + 0.005))  # fmt: skip

    def execute(self) -> None:
        vna, surface = self.station["vna"], self.station["metasurface"]
        clock = self.station.clock
        vna.configure(**self._sweep())
        vna.define_traces(["S21"])
        vna.rf_on = True
        rng = np.random.default_rng(self.seed)
        n_bits = int(self.station.bench.layout.get("n_bits", surface.n_bits))
        configs = rng.integers(0, 2, size=(self.n_configs, n_bits)).astype(bool)
        f_hz = vna.frequencies_hz()
        traces = np.empty((self.n_configs, self.n_repeats, len(f_hz)), dtype=complex)
        total = self.n_configs * self.n_repeats
        self.run.set_trace_axis("s21", f_hz, "Hz")
        for i, config in enumerate(configs):
            surface.configuration = config
            clock.sleep(self.settle_s)
            for r in range(self.n_repeats):
                traces[i, r] = vna.sweep_arrays()["S21"]
                self.run.append_trace(
                    "s21", traces[i, r], unit="1 (complex S21, linear)",
                    description="one sweep per row: configuration results/config, repeat "
                    "results/repeat; frequencies in s21_x",
                )  # fmt: skip
                self.run.append_row(config=i, repeat=r)
                self.progress(i * self.n_repeats + r + 1, total)
        magnitude = np.abs(traces)
        between = magnitude.mean(axis=1).std(axis=0)  # spread across configurations
        within = magnitude.std(axis=1).mean(axis=0)  # spread across repeats (noise floor)
        snr = between / np.maximum(within, 1e-15)
        self.run.write_array("calibration/frequency_hz", f_hz, unit="Hz")
        self.run.write_array("calibration/configurations", configs, unit="bit",
                             description="[configuration, metasurface element]: the state of "
                             "each element in each random configuration")  # fmt: skip
        self.run.write_array("calibration/between_configs", between, unit=S21_MAGNITUDE,
                             description="per frequency: std over configurations of |S21| "
                             "averaged over the repeats (what the metasurface controls)")  # fmt: skip
        self.run.write_array("calibration/within_repeats", within, unit=S21_MAGNITUDE,
                             description="per frequency: std of |S21| over the repeats of one "
                             "configuration, averaged over configurations (noise and drift)")  # fmt: skip
        summary = {
            "mean_s21": float(magnitude.mean()),
            "config_spread": float(between.mean()),
            "noise_floor": float(within.mean()),
            "snr_median": float(np.median(snr)),
            "repeatability": float(
                np.mean(within / np.maximum(magnitude.mean(axis=(0, 1)), 1e-15))
            ),  # fmt: skip
            "queries": total,
        }
        self.run.set_summary(**summary)
        self.run.describe_summary(METASURFACE)
        self.log.info("configurations differ %.1f× more than repeats (median over frequency)",
                      summary["snr_median"])  # fmt: skip

    @classmethod
    def plot_report(cls, f, figure) -> None:
        f_ghz = f["calibration/frequency_hz"][()] / 1e9
        traces = np.abs(f["traces/s21"][()])
        n_repeats = int(f["results/repeat"][()].max()) + 1
        per_config = traces.reshape(-1, n_repeats, traces.shape[-1]).mean(axis=1)
        ax = figure.add_subplot(1, 2, 1)
        im = ax.imshow(20 * np.log10(per_config + 1e-12), aspect="auto", cmap="viridis",
                       interpolation="nearest",  # configurations are discrete rows
                       extent=(f_ghz[0], f_ghz[-1], len(per_config), 0))  # fmt: skip
        figure.colorbar(im, ax=ax, label="|S21| (dB)")
        ax.set_xlabel("frequency (GHz)")
        ax.set_ylabel("configuration")
        ax.set_title("|S21| for random metasurface configurations")
        ax = figure.add_subplot(1, 2, 2)
        ax.semilogy(f_ghz, f["calibration/between_configs"][()], label="between configurations")
        ax.semilogy(f_ghz, f["calibration/within_repeats"][()], label="between repeats (noise)")
        ax.set_xlabel("frequency (GHz)")
        ax.set_ylabel("std of |S21|")
        ax.legend()
        ax.set_title("what the metasurface controls, against the noise floor")
