"""calibrate-tm: the medium's transmission matrix by Hadamard phase stepping.

4N frames for N modes (Popoff et al. 2010, see :mod:`labpnn.calibration.tm`). Each
mode is a square block of macropixels; the static SLM border is the reference. The
result, the *observed* TM ``diag(conj(s))·T`` on every ROI pixel, goes into the run
file and the calibration registry, where ``validate-focus`` and ``control-tm`` find it.

Checks: the TM predicts held-out speckle (works on any bench); on a simulated bench
also the column-wise |Pearson| against the simulator's true observed TM.
"""

from __future__ import annotations

import numpy as np

from labpnn.bench import make_bench
from labpnn.calibration.tm import basis_phases, column_pearson, reconstruct
from labpnn.errors import BadInput
from labpnn.procedure import (
    BooleanParameter,
    Estimate,
    FloatParameter,
    IntegerParameter,
    LabProcedure,
)
from labpnn.procedures.calibration.optical_common import (
    auto_expose,
    check_saturation,
    full_basis_modes,
    group_blocks,
    probe_patterns,
    raw_frame_attrs,
    reference_only_frame,
)
from labpnn.procedures.calibration.summary_docs import TM

# Reference-only frames averaged for |s_ref|²: a TM twin divides by |s_ref| pixel by pixel, so
# its shot noise matters. On S6's bench at calibrate-tm's auto exposure (0.52 ms) the twin's
# validation NRMSE was 0.132 from 1 frame, 0.109 from 4 and 0.102 from 16 (2026-12-05).
REFERENCE_FRAMES = 16

# A hold-out prediction below this is worth a warning (noise-free benches reach > 0.99).
PREDICTION_WARN_BELOW = 0.9


class CalibrateTM(LabProcedure):
    """Hadamard phase-stepping TM with the static SLM border as reference."""

    name = "calibrate-tm"
    bench_kinds = ("optical",)
    roles = ("slm", "camera")
    default_station = "optical-sim"
    watchdog_s = 120.0

    # 0: the full basis, so a station with more macropixels than a fixed default is calibrated
    # whole (a 256-mode TM of 32x32 macropixels moves them in 2x2 blocks, and control-tm then
    # projects with a quarter of the SLM's degrees of freedom).
    n_modes = IntegerParameter(
        "Modes (Hadamard basis size, a power of 2; 0 = one per macropixel)",
        default=0, minimum=0, maximum=65536,
    )  # fmt: skip
    chunk = IntegerParameter("Frames per pipelined batch", default=64, minimum=1, maximum=4096)
    auto_exposure = BooleanParameter("Lower the exposure on saturation", default=True)
    n_holdout = IntegerParameter("Held-out test patterns", default=8, minimum=0, maximum=1000)
    seed = IntegerParameter("Seed of the test patterns", default=0, minimum=0, maximum=2**31 - 1)
    valid_for_h = FloatParameter("Valid for", units="h", default=24.0, minimum=0.01, maximum=1e4)

    def _macropixels(self, layout) -> tuple[int, int]:
        raw = layout.get("macropixels", 16)
        return (int(raw), int(raw)) if isinstance(raw, int) else tuple(int(v) for v in raw)

    def modes(self, layout) -> int:
        """``n_modes``, or with 0 the full basis of this layout (:func:`full_basis_modes`)."""
        if self.n_modes:
            return int(self.n_modes)
        try:
            return full_basis_modes(self._macropixels(layout))
        except ValueError as exc:
            raise BadInput(f"calibrate-tm: {exc}") from None

    def estimate(self) -> Estimate:
        # 16 auto-exposure probes and the reference frames
        frames = 4 * self.modes(self.station_config.bench.layout) + self.n_holdout + 16
        frames += REFERENCE_FRAMES
        sim = self.station_config.bench.simulation
        rate = 60.0  # one SLM refresh per frame, pipelined
        return Estimate(queries=frames, seconds=frames / rate,
                        note="at one frame per 60 Hz SLM refresh" if sim else "")  # fmt: skip

    def check_station_config(self, config) -> None:
        """n_modes against the layout: refused by dry runs, the queue and schedules too."""
        super().check_station_config(config)
        n = self.modes(config.bench.layout)
        if n < 4 or n & (n - 1):
            raise BadInput(f"calibrate-tm: n_modes={n} must be a power of two, at least 4")
        try:
            group_blocks(self._macropixels(config.bench.layout), n)
        except ValueError as exc:
            raise BadInput(f"calibrate-tm: {exc}") from None

    def execute(self) -> None:
        bench = make_bench(self.station)
        n = self.modes(self.station.bench.layout)
        if not self.n_modes:
            self.log.info("n_modes=0: the full basis of %s macropixels, %d modes",
                          "x".join(map(str, bench.macropixels)), n)  # fmt: skip
        groups = group_blocks(bench.macropixels, n)
        rng = np.random.default_rng(self.seed)
        camera_cal = self.registry.latest("camera")
        self.dark = 0.0
        if camera_cal is not None and not camera_cal.expired:
            arrays = self.record_calibration(camera_cal).arrays()
            bench.camera.exposure_s = float(arrays["exposure_s"])
            if tuple(arrays["roi"]) == tuple(bench.camera.roi):
                self.dark = arrays["dark_frame"].reshape(-1)
            self.log.info("exposure %.4g s from calibrate-camera", bench.camera.exposure_s)
        if self.auto_exposure:
            probe = probe_patterns(bench, 16, rng)
            auto_expose(self, bench, lambda: bench.acquire(probe))

        patterns = basis_phases(n)[:, groups]  # [4N, ny, nx]
        total = len(patterns)
        frames = np.empty((total, *bench.camera.roi[3:1:-1]))
        saturated = np.zeros(frames.shape[1:], dtype=bool)
        about = raw_frame_attrs(bench, "phase-stepping frames, one per Hadamard pattern and step")
        exposure = bench.camera.exposure_s  # fixed while stepping
        for start in range(0, total, self.chunk):
            batch = patterns[start : start + self.chunk]

            def keep(i, frame, t, start=start):
                frames[start + i] = frame
                self.run.append_frame("camera", frame.astype(np.uint16), t, clock="bench",
                                      exposure_s=exposure, **about)  # fmt: skip

            bench.acquire(batch, on_frame=keep)
            saturated |= (frames[start : start + len(batch)] >= bench.full_scale).any(axis=0)
            self.progress(start + len(batch), total, frames=start + len(batch))
        if saturated.any():
            self.run.set_summary(saturated_pixels=int(saturated.sum()))  # also if refused
        # Clipped phase steps give wrong TM rows: refused if many, a warning if a few.
        check_saturation(self, frames, bench.full_scale, exposure, "during phase stepping")

        tm = reconstruct(frames.reshape(total, -1), n)
        summary = {"n_modes": n, "saturated_pixels": int(saturated.sum())}
        # |s_ref|² undoes the TM's diag(conj(s_ref)) factor; control-tm and the hold-out check
        # need it, so it is measured once here, at the TM's exposure, and kept with the TM.
        reference = self._reference_intensity(bench)
        summary.update(self._holdout_check(bench, tm, groups, rng, reference))
        if summary.get("prediction_pearson", 1.0) < PREDICTION_WARN_BELOW:
            self.log.warning(
                "the TM predicts held-out speckle with Pearson %.2f only (< %.1f): the medium "
                "drifted during the calibration, the signal is weak, or the bench moved; it is "
                "registered, but check it (validate-focus) before relying on it",
                summary["prediction_pearson"], PREDICTION_WARN_BELOW,
            )  # fmt: skip
        truth = self.station.ground_truth
        if truth is not None:
            summary.update(self._against_truth(bench, tm, groups, truth))
        summary.update(queries=bench.queries, hardware_s=bench.hardware_s,
                       exposure_s=bench.camera.exposure_s)  # fmt: skip

        self.run.write_array("calibration/tm", tm, basis="hadamard", unit="ADU",
                             definition="diag(conj(s_ref)) T on ROI pixels (row-major)")  # fmt: skip
        self.run.write_array("calibration/groups", groups, unit="mode index",
                             description="[ny, nx]: the mode (column of calibration/tm, a "
                             "square block of macropixels) each SLM macropixel belongs to")  # fmt: skip
        self.run.write_array("calibration/reference_intensity", reference, unit="ADU",
                             definition="|s_ref|² on ROI pixels (row-major), dark removed")  # fmt: skip
        self.run.set_summary(**summary)
        self.run.describe_summary(TM)
        self.registry.save(
            "tm",
            arrays={"tm": tm, "groups": groups, "roi": np.array(bench.camera.roi),
                    "exposure_s": np.array(bench.camera.exposure_s),
                    "macropixels": np.array(bench.macropixels),
                    "reference_intensity": reference,
                    # taken off the reference (and cancelled in the TM): what a twin adds back
                    "dark_level": np.broadcast_to(np.asarray(self.dark, dtype=np.float64),
                                                  reference.shape).copy()},
            metrics=summary,
            run_file=self.run.path,
            valid_for_s=self.valid_for_h * 3600,
        )  # fmt: skip
        self.log.info("TM %s measured; %s", tm.shape,
                      ", ".join(f"{k}={v:.4g}" for k, v in summary.items()
                                if isinstance(v, float)))  # fmt: skip

    def _reference_intensity(self, bench) -> np.ndarray:
        """|s_ref|² (ADU, dark removed, ROI pixels row-major): every macropixel switched off."""
        return reference_only_frame(bench, REFERENCE_FRAMES).reshape(-1) - self.dark

    def _holdout_check(self, bench, tm, groups, rng, s2: np.ndarray) -> dict[str, float]:
        """Predict held-out speckle from the TM and the reference-only intensity ``s2``."""
        if not self.n_holdout:
            return {}
        test = rng.uniform(0, 2 * np.pi, size=(self.n_holdout, int(groups.max()) + 1))
        measured = bench.acquire(test[:, groups])
        self.progress(1, 1)
        # Where the reference is dark, tm = conj(s)·T carries no usable phase: skip those.
        lit = s2 > 0.1 * s2.mean()
        s = np.sqrt(s2[lit])  # |s|: the reference's phase is already inside tm
        field = np.exp(1j * test) @ tm[lit].T  # [k, lit pixels]: conj(s)·T·e^{iφ}
        predicted = np.abs(s + field / s) ** 2
        scores = [np.corrcoef(p, m.reshape(-1)[lit])[0, 1] for p, m in zip(predicted, measured)]
        return {"prediction_pearson": float(np.mean(scores))}

    def _against_truth(self, bench, tm, groups, truth) -> dict[str, float]:
        true_tm = np.asarray(truth["tm"])  # [pixels, macropixels]
        onehot = np.zeros((groups.size, int(groups.max()) + 1))
        onehot[np.arange(groups.size), groups.reshape(-1)] = 1.0
        x, y, w, h = bench.camera.roi
        tx, ty, tw, th = truth.get("pixel_roi", (x, y, w, h))
        rows = np.arange(h)[:, None] + y, np.arange(w)[None, :] + x
        inside = (rows[0] >= ty) & (rows[0] < ty + th) & (rows[1] >= tx) & (rows[1] < tx + tw)
        measured = tm[inside.reshape(-1)]
        pearson = column_pearson(measured, true_tm @ onehot)
        return {"pearson": float(pearson.mean()), "pearson_min": float(pearson.min())}

    @classmethod
    def plot_report(cls, f, figure) -> None:
        tm = f["calibration/tm"][()]
        n = tm.shape[1]
        side = int(np.sqrt(tm.shape[0]))
        ax = figure.add_subplot(1, 3, 1)
        ax.imshow(np.abs(tm), aspect="auto", cmap="viridis")
        ax.set_title(f"|TM| ({tm.shape[0]} pixels × {n} modes)")
        ax.set_xlabel("mode")
        ax.set_ylabel("camera pixel")
        ax = figure.add_subplot(1, 3, 2)
        if side * side == tm.shape[0]:
            ax.imshow(np.abs(tm[:, 0]).reshape(side, side), cmap="magma")
            ax.set_title("|TM| column 0 on the camera")
        ax = figure.add_subplot(1, 3, 3)
        summary = dict(f["summary"].attrs)
        keys = [k for k in ("pearson", "pearson_min", "prediction_pearson") if k in summary]
        ax.bar(keys, [summary[k] for k in keys], color="tab:blue")
        ax.axhline(0.99, color="k", ls="--", lw=1, label="S1 target 0.99")
        low = min(0.9, *[summary[k] for k in keys]) if keys else 0.0
        ax.set_ylim(max(0.0, low - 0.05), 1.0)  # the lowest bar stays visible
        ax.tick_params(axis="x", labelrotation=20)
        ax.legend()
        ax.set_title("calibration checks")


def measure_tm(bench, n_modes: int = 0) -> dict[str, np.ndarray]:
    """The phase-stepping measurement of :class:`CalibrateTM`, in one batch and unrecorded:
    the arrays it registers (``tm``, ``groups``, ``roi``, ``exposure_s``, ``macropixels``,
    ``reference_intensity``), at the camera's current exposure and with no dark frame.

    For studies and tests that need a bench's TM in-process; in the lab, run calibrate-tm,
    which checks saturation, streams its frames and registers the result.
    """
    n = int(n_modes) or full_basis_modes(bench.macropixels)
    groups = group_blocks(bench.macropixels, n)
    patterns = basis_phases(n)[:, groups]
    frames = bench.acquire(patterns)
    return {
        "tm": reconstruct(frames.reshape(len(patterns), -1), n),
        "groups": groups,
        "roi": np.array(bench.camera.roi),
        "exposure_s": np.array(bench.camera.exposure_s),
        "macropixels": np.array(bench.macropixels),
        "reference_intensity": reference_only_frame(bench, REFERENCE_FRAMES).reshape(-1),
    }
