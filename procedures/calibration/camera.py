"""calibrate-camera: the camera's dark level and an exposure that keeps speckle unsaturated.

No shutter is assumed: the dark level is the zero-exposure intercept of each pixel's
response to the same SLM patterns at several exposures. The exposure is chosen so the
brightest speckle grain of random patterns stays below a ceiling of full scale.
"""

from __future__ import annotations

import numpy as np

from labpnn.bench import make_bench
from labpnn.procedure import Estimate, FloatParameter, IntegerParameter, LabProcedure
from labpnn.procedures.calibration.optical_common import (
    auto_expose,
    dark_by_extrapolation,
    probe_patterns,
    raw_frame_attrs,
)
from labpnn.procedures.calibration.summary_docs import CAMERA


class CalibrateCamera(LabProcedure):
    """Dark frame and auto-exposure below saturation."""

    name = "calibrate-camera"
    bench_kinds = ("optical",)
    roles = ("slm", "camera")
    default_station = "optical-sim"
    watchdog_s = 60.0

    n_patterns = IntegerParameter("Random SLM patterns per step", default=16, minimum=1,
                                  maximum=1000)  # fmt: skip
    ceiling = FloatParameter("Brightest pixel at most", units="of full scale", default=0.8,
                             minimum=0.1, maximum=0.99)  # fmt: skip
    seed = IntegerParameter("Pattern seed", default=0, minimum=0, maximum=2**31 - 1)
    valid_for_h = FloatParameter("Valid for", units="h", default=24.0, minimum=0.01, maximum=1e4)

    def estimate(self) -> Estimate:
        frames = self.n_patterns * (3 + 4)
        return Estimate(queries=frames, seconds=frames / 60.0)

    def execute(self) -> None:
        bench = make_bench(self.station)
        rng = np.random.default_rng(self.seed)
        phases = probe_patterns(bench, self.n_patterns, rng)
        self.progress(0, 3, stage="exposure")
        exposure = auto_expose(self, bench, lambda: bench.acquire(phases), ceiling=self.ceiling)
        self.progress(1, 3, stage="dark")
        dark = dark_by_extrapolation(bench, phases, [exposure / 4, exposure / 2, exposure])
        self.progress(2, 3, stage="check")
        frames = bench.acquire(phases)
        about = raw_frame_attrs(bench, "check frames of random SLM patterns at the chosen exposure")
        for frame in frames:
            self.run.append_frame("camera", frame.astype(np.uint16), exposure_s=exposure, **about)
        peak = float(frames.max() / bench.full_scale)
        summary = {
            "exposure_s": exposure,
            "dark_level_adu": float(dark.mean()),
            "peak_fraction": peak,
            "mean_signal_adu": float((frames - dark).mean()),
            "queries": bench.queries,
            "hardware_s": bench.hardware_s,
        }
        truth = self.station.ground_truth
        if truth is not None and "black_level_adu" in truth:
            summary["dark_error_adu"] = float(np.mean(dark) - truth["black_level_adu"])
        self.run.write_array("calibration/dark_frame", dark, unit="ADU (camera counts)",
                             description="per-pixel dark level of the camera ROI: the "
                             "zero-exposure intercept of ADU against exposure")  # fmt: skip
        self.run.set_summary(**summary)
        self.run.describe_summary(CAMERA)
        self.registry.save(
            "camera",
            arrays={"dark_frame": dark, "exposure_s": np.array(exposure),
                    "roi": np.array(bench.camera.roi)},
            metrics=summary,
            run_file=self.run.path,
            valid_for_s=self.valid_for_h * 3600,
        )  # fmt: skip
        self.progress(3, 3)
        self.log.info("exposure %.4g s, dark level %.1f ADU, peak %.0f%% of full scale",
                      exposure, dark.mean(), 100 * peak)  # fmt: skip

    @classmethod
    def plot_report(cls, f, figure) -> None:
        ax = figure.add_subplot(1, 2, 1)
        im = ax.imshow(f["calibration/dark_frame"][()], cmap="gray")
        figure.colorbar(im, ax=ax, label="ADU")
        ax.set_title("dark frame (zero-exposure intercept)")
        ax = figure.add_subplot(1, 2, 2)
        frames = f["frames/camera"]
        ax.hist(frames[()].ravel(), bins=100, log=True)
        ax.set_xlabel("ADU")
        ax.set_title(f"speckle histogram at {f['summary'].attrs.get('exposure_s', 0):.3g} s")
