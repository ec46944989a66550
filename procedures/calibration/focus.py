"""validate-focus: focus through the medium by phase conjugation of the latest TM.

For phase-only control of N modes the expected enhancement (focus intensity over the
mean speckle intensity at that pixel) is (π/4)(N−1)+1 (Vellekoop & Mosk 2007); how
close a bench comes measures the TM's quality. During focusing the reference border
and unused modes carry a pixel checkerboard, which diffracts their light away, so
only the N controlled modes reach the camera. Enhancement is measured for N and for
subsets of it, to draw enhancement against theory.
"""

from __future__ import annotations

import numpy as np

from labpnn.bench import make_bench
from labpnn.calibration.tm import focus_phases, theory_enhancement
from labpnn.errors import BadInput
from labpnn.procedure import Estimate, IntegerParameter, LabProcedure
from labpnn.procedures.calibration.optical_common import (
    auto_expose,
    blocked_image,
    dark_by_extrapolation,
    probe_patterns,
    raw_frame_attrs,
)
from labpnn.procedures.calibration.summary_docs import focus_docs
from labpnn.recalibrate import auto_recalibrate_enabled, ensure_calibration

# Below this fraction of the theoretical enhancement the TM is rejected (expired in the
# registry). A sound TM reaches >= 0.8 without noise and >= 0.5 at 20 dB SNR (S1).
REJECT_BELOW = 0.3


class ValidateFocus(LabProcedure):
    """Phase-conjugation focusing from the latest TM; enhancement against theory."""

    name = "validate-focus"
    bench_kinds = ("optical",)
    roles = ("slm", "camera")
    default_station = "optical-sim"
    watchdog_s = 120.0

    n_targets = IntegerParameter("Focus targets (camera pixels)", default=5, minimum=1,
                                 maximum=1000)  # fmt: skip
    n_random = IntegerParameter("Random patterns for the mean speckle", default=64, minimum=4,
                                maximum=100000)  # fmt: skip
    seed = IntegerParameter("Seed for targets and patterns", default=0, minimum=0,
                            maximum=2**31 - 1)  # fmt: skip

    def estimate(self) -> Estimate:
        frames = self.n_random * 2 + self.n_targets * 3 * 4
        return Estimate(queries=frames, seconds=frames / 60.0)

    def validate(self) -> None:
        super().validate()
        if not auto_recalibrate_enabled(self):
            self.registry.require("tm", "calibrate-tm")  # none at all: bad input, nothing starts

    def _blocked_cells(self, bench, active: np.ndarray) -> np.ndarray:
        blocked = bench.reference_mask.copy()
        b = bench.layout.reference_border
        ny, nx = bench.macropixels
        blocked[b : b + ny, b : b + nx] |= ~active
        return blocked

    def execute(self) -> None:
        bench = make_bench(self.station)
        # an expired TM is recorded (ledger event) or, with calibration.auto_recalibrate,
        # measured again first on the bench this run holds
        self.calibration = ensure_calibration(self, "tm", "calibrate-tm")
        arrays = self.calibration.arrays()
        tm, groups = arrays["tm"], arrays["groups"]
        if tuple(arrays["roi"]) != tuple(bench.camera.roi) or groups.shape != bench.macropixels:
            raise BadInput("the stored TM was taken with another ROI or macropixel grid; "
                           "run calibrate-tm again")  # fmt: skip
        n = tm.shape[1]
        rng = np.random.default_rng(self.seed)
        bench.camera.exposure_s = float(arrays["exposure_s"])
        all_modes = np.ones(bench.macropixels, dtype=bool)
        no_reference = self._blocked_cells(bench, all_modes)

        # Mean speckle intensity per pixel, reference off, per second of exposure.
        random_phases = probe_patterns(bench, self.n_random, rng)

        def random_frames() -> np.ndarray:
            out = []
            for phases in random_phases:
                bench.slm.show_grey(blocked_image(bench, bench.cell_phases(phases), no_reference))
                out.append(bench.grab()[0])
            return np.asarray(out)

        auto_expose(self, bench, lambda: random_frames()[:8])
        dark = dark_by_extrapolation(bench, random_phases[:4], [bench.camera.exposure_s / 2,
                                                                bench.camera.exposure_s])  # fmt: skip
        frames = random_frames()
        baseline = (frames - dark).mean(axis=0).reshape(-1) / bench.camera.exposure_s
        sizes = sorted({max(4, n // 16), max(4, n // 4), n})  # mode subsets, one stage each
        self.progress(1, 1 + len(sizes), stage="speckle")

        energy = np.sum(np.abs(tm) ** 2, axis=1)
        candidates = np.argsort(energy)[len(energy) // 2 :]  # where the reference was bright
        targets = rng.choice(candidates, size=min(self.n_targets, len(candidates)), replace=False)
        results: dict[int, list[float]] = {}
        order = rng.permutation(n)
        about = raw_frame_attrs(bench, "one focus per target and mode subset (results rows in "
                                "order), each at its own exposure")  # fmt: skip
        for step, size in enumerate(sizes):
            active_groups = np.zeros(n, dtype=bool)
            active_groups[order[:size]] = True
            blocked = self._blocked_cells(bench, active_groups[groups])
            for target in targets:
                phases = focus_phases(tm, int(target))[groups]
                image = blocked_image(bench, bench.cell_phases(phases), blocked)

                def focus_frame(image=image) -> np.ndarray:
                    bench.slm.show_grey(image)
                    return bench.grab()[0]

                auto_expose(self, bench, focus_frame)
                frame = focus_frame()
                self.run.append_frame("focus", frame.astype(np.uint16),
                                      exposure_s=bench.camera.exposure_s, **about)  # fmt: skip
                intensity = (frame - dark).reshape(-1)[target] / bench.camera.exposure_s
                share = np.sum(np.abs(tm[target, active_groups]) ** 2) / energy[target]
                eta = float(intensity / (baseline[target] * share))
                results.setdefault(size, []).append(eta)
                self.run.append_row(n_modes=size, target=int(target), enhancement=eta,
                                    theory=theory_enhancement(size))  # fmt: skip
            self.progress(2 + step, 1 + len(sizes), n_modes=size,
                          enhancement=float(np.mean(results[size])))  # fmt: skip

        eta = float(np.mean(results[n]))
        summary = {
            "enhancement": eta,
            "enhancement_std": float(np.std(results[n])),
            "enhancement_theory": theory_enhancement(n),
            "enhancement_ratio": eta / theory_enhancement(n),
            "n_modes": n,
            "queries": bench.queries,
            "hardware_s": bench.hardware_s,
        }
        for size in sizes[:-1]:
            summary[f"enhancement_ratio_{size}"] = float(
                np.mean(results[size])
            ) / theory_enhancement(size)
        self.run.set_summary(**summary)
        self.run.describe_summary(focus_docs(sizes[:-1]))
        self.log.info("enhancement %.1f ± %.1f = %.2f × theory (%.1f) for N=%d",
                      eta, summary["enhancement_std"], summary["enhancement_ratio"],
                      theory_enhancement(n), n)  # fmt: skip
        if summary["enhancement_ratio"] < REJECT_BELOW:
            # A validation that fails says so where the next run looks: the registry.
            self.registry.expire(self.calibration.id)
            self.log.warning(
                "enhancement is only %.2f of theory (below %.2f): TM #%d no longer describes "
                "this medium (drift, a moved fibre, another bench); it is now marked expired. "
                "Recalibrate: labpnn run calibrate-tm --station %s",
                summary["enhancement_ratio"], REJECT_BELOW, self.calibration.id,
                self.station.name,
            )  # fmt: skip

    @classmethod
    def plot_report(cls, f, figure) -> None:
        focus = f["frames/focus"]
        ax = figure.add_subplot(1, 2, 1)
        im = ax.imshow(focus[len(focus) - 1], cmap="inferno")
        figure.colorbar(im, ax=ax, label="ADU")
        ax.set_title("focus through the medium (last target)")
        ax = figure.add_subplot(1, 2, 2)
        modes = f["results/n_modes"][()]
        eta = f["results/enhancement"][()]
        ax.plot(modes, eta, "o", alpha=0.5, label="measured (per target)")
        sizes = np.unique(modes)
        ax.plot(sizes, [eta[modes == s].mean() for s in sizes], "s-", label="measured mean")
        grid = np.linspace(sizes.min(), sizes.max(), 100)
        ax.plot(grid, theory_enhancement(grid), "k--", label="theory (π/4)(N−1)+1")
        ax.set_xlabel("controlled modes N")
        ax.set_ylabel("enhancement η")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.legend()
        ax.set_title("enhancement against theory")
