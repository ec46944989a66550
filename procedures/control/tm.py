"""control-tm: the full-TM baseline: project targets by phase retrieval through the known TM.

The latest ``tm`` calibration (from ``calibrate-tm``) holds the observed TM
``A = diag(conj(s))·T`` on the camera ROI, where ``s`` is the static reference field of the
SLM border. One reference-only frame (macropixels switched off by a pixel checkerboard)
gives ``|s|²``, so the camera image is predicted as ``| |s| + A·exp(iφ)/|s| |²``, binned by
``layout.pool`` (:mod:`labpnn.control.phase_retrieval`). Gerchberg–Saxton through that model
(ridge-regularised, so that noise in the measured TM does not steer it) gives one
phase-only SLM pattern per target. A Pearson-gradient refinement is available but off by
default: on a measured TM it fits the TM's errors and lowers the measured fidelity.

Pixels where the reference is nearly dark carry little of ``T`` in ``A`` (their rows are
mostly noise); their ``|s|`` is floored at ``reference_floor`` of the mean so that they do
not dominate the pattern.

``n_iterations`` > 1 projects the same patterns again, ``interval_s`` of bench time apart:
on a drifting medium this shows the TM going stale (fidelity against ``time_s``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labpnn.calibration.tm import reference_amplitude
from labpnn.control.phase_retrieval import ProjectionOptics, project_targets
from labpnn.control.speckle_model import code_phases, phase_codes
from labpnn.errors import BadInput
from labpnn.procedure import FloatParameter, IntegerParameter
from labpnn.procedures.control.common import BASELINE_PATTERNS, ControlProcedure
from labpnn.recalibrate import auto_recalibrate_enabled, ensure_calibration

CHECKPOINT_FORMAT = "labpnn-control-tm/1"


def pooling_matrix(shape: tuple[int, int], pool_spec: tuple[int, int, int]) -> np.ndarray | None:
    """[target pixels, camera pixels] averaging matrix of the bench's pooling (None if k=1)."""
    from labpnn.bench.optical import average_pool

    kernel, stride, padding = pool_spec
    if kernel == 1 and stride == 1 and padding == 0:
        return None
    h, w = shape
    eye = np.eye(h * w).reshape(h * w, h, w)
    return average_pool(eye, kernel, stride, padding).reshape(h * w, -1).T


class ControlTM(ControlProcedure):
    """Project target images by phase retrieval through the latest calibrated TM.

    The full-TM baseline for the learned controllers; see the module docstring.
    """

    name = "control-tm"
    watchdog_s = 600.0
    controls_every_macropixel = False  # as many degrees of freedom as the TM has modes

    gs_iterations = IntegerParameter("Gerchberg–Saxton iterations", default=200, minimum=0,
                                     maximum=100000)  # fmt: skip
    gs_regularization = FloatParameter(
        "Ridge of the GS back-projection (relative to the mean power)",
        default=0.3, minimum=0.0, maximum=100.0,
    )  # fmt: skip
    refine_steps = IntegerParameter(
        "Pearson refinement steps after GS (fits TM errors too)", default=0, minimum=0,
        maximum=100000,
    )  # fmt: skip
    reference_floor = FloatParameter(
        "Floor of the reference intensity, as a fraction of its mean",
        default=0.05, minimum=0.0, maximum=1.0,
    )  # fmt: skip
    n_iterations = IntegerParameter(
        "Projections of the same patterns (stale-TM monitoring)", default=1, minimum=1,
        maximum=100000,
    )  # fmt: skip
    interval_s = FloatParameter(
        "Bench time between projections", units="s", default=0.0, minimum=0.0, maximum=1e6
    )

    def estimate_queries(self) -> int:
        _macro, shape = self.layout_sizes()
        n = len(self.load_targets(shape)[0])
        return 1 + min(n, BASELINE_PATTERNS) + int(self.n_iterations) * n  # + chance level

    def validate(self) -> None:
        super().validate()
        if auto_recalibrate_enabled(self):
            return  # execute() gets a TM (measured again if need be) and checks it there
        self._check_tm(self.registry.require("tm", "calibrate-tm").arrays(), warn=False)

    def _check_tm(self, arrays: dict[str, np.ndarray], warn: bool = True) -> None:
        tm, groups = arrays["tm"], arrays.get("groups")
        macro, _shape = self.layout_sizes()
        roi = tuple(int(v) for v in self.station.bench.layout.get("camera_roi", (0, 0, 64, 64)))
        n_pixels = roi[2] * roi[3]
        if tm.ndim != 2 or tm.shape[0] != n_pixels:
            raise BadInput(
                f"control-tm: the TM in the registry has {tm.shape[0]} camera pixels but the "
                f"camera ROI {list(roi)} has {n_pixels}; run `labpnn run calibrate-tm "
                f"--station {self.station.name}` again"
            )
        if groups is None or tuple(groups.shape) != tuple(macro):
            raise BadInput(
                f"control-tm: the TM in the registry does not map the {macro[0]}x{macro[1]} "
                "macropixels; run calibrate-tm again on this station"
            )
        if warn:
            hint = ""
            if tm.shape[1] < groups.size:
                hint = (
                    f" (the TM has {tm.shape[1]} modes, so the {groups.size} macropixels move "
                    f"in blocks; `labpnn run calibrate-tm --station {self.station.name} --set "
                    "n_modes=0` calibrates the full basis)"
                )
            self.record_dof(tm.shape[1], self.bench.n_out, hint)

    # -- the run --------------------------------------------------------------------------
    def execute(self) -> None:
        bench, measure = self.open_bench()
        targets, names = self.load_targets(bench.pooled_shape)
        self.write_targets(targets, names)
        flat = targets.reshape(len(targets), -1)
        # an expired TM is recorded (ledger event) or, with calibration.auto_recalibrate,
        # measured again first on the bench this run holds
        arrays = ensure_calibration(self, "tm", "calibrate-tm").arrays()
        self._check_tm(arrays)
        groups = arrays["groups"].reshape(-1)
        first = 0
        rows: list[dict[str, Any]] = []
        if self.resume_state is not None:
            codes, first, rows = self._resume(bench)
            phases = code_phases(codes)
        else:
            self.set_progress(0, 1 + self.n_iterations, stage="chance level")
            chance = self.random_patterns(bench.n_in, len(flat))
            self.record_baseline(measure(chance), flat, len(chance))
            self.set_progress(0, 1 + self.n_iterations, stage="phase retrieval")
            optics = self._optics(bench, arrays)
            modes = project_targets(optics, flat, int(self.gs_iterations),
                                    int(self.refine_steps), float(self.gs_regularization))  # fmt: skip
            predicted = optics.intensity(modes)
            from labpnn.control.metrics import pearson_fidelity

            self.predicted_fidelity = float(np.mean(pearson_fidelity(predicted, flat, flat=True)))
            phases = np.mod(modes[:, groups], 2 * np.pi)
            self.run.set_attrs("/", tm_modes=int(modes.shape[1]),
                               predicted_fidelity=self.predicted_fidelity)  # fmt: skip
            self._checkpoint(bench, phases, 0, rows)
        for iteration in range(first, int(self.n_iterations)):
            if iteration > 0 and self.interval_s:
                bench.clock.sleep(float(self.interval_s))
            extra = self._truth_extras(bench, phases, flat)  # the medium may have drifted
            start = self.now()
            images = measure(phases)
            row = self.record_evaluation(iteration, bench.queries, phases, images, targets,
                                         self.now() - start, **extra)  # fmt: skip
            rows.append(row)
            self._checkpoint(bench, phases, iteration + 1, rows)
            self.set_progress(iteration + 2, 1 + self.n_iterations, fidelity=row["fidelity"])
        last = rows[-1]
        self.log.info(
            "control-tm: fidelity %.4f ± %.4f on %d targets (%d queries); random patterns "
            "score %.3f",
            last["fidelity"], last["fidelity_std"], len(flat), bench.queries,
            (self.baseline or {}).get("baseline_fidelity", float("nan")),
        )  # fmt: skip

    def _optics(self, bench: Any, arrays: dict[str, np.ndarray]) -> ProjectionOptics:
        """The projection model from the TM and one reference-only frame."""
        tm = np.asarray(arrays["tm"], dtype=np.complex128)
        reference = arrays.get("reference_intensity")
        if reference is None:
            reference = self._reference_frame(bench, float(arrays["exposure_s"]))
        s, dark = reference_amplitude(reference, float(self.reference_floor))
        if dark:
            self.log.info("%d camera pixels have a reference below the floor", dark)
        roi = bench.camera.roi
        return ProjectionOptics(
            tm=tm / s[:, None],
            reference=s.astype(np.complex128),
            pooling=pooling_matrix((roi[3], roi[2]), bench.pool_spec),
        )

    def _reference_frame(self, bench: Any, exposure_s: float) -> np.ndarray:
        """|s|² in ADU at the TM's exposure: every macropixel switched off by a checkerboard."""
        from labpnn.procedures.calibration.optical_common import reference_only_frame

        camera = bench.camera
        keep = camera.exposure_s
        try:
            camera.exposure_s = exposure_s
            frame = reference_only_frame(bench)
        finally:
            camera.exposure_s = keep
        self.run.write_array("control/reference_frame", frame, exposure_s=exposure_s,
                             unit="ADU (camera counts)", description="raw camera ROI with every "
                             "macropixel switched off (reference light only), dark not removed")  # fmt: skip
        camera_cal = self.registry.latest("camera")
        if camera_cal is not None and not camera_cal.expired:
            cal = self.record_calibration(camera_cal).arrays()
            if "dark_frame" in cal and tuple(cal.get("roi", ())) == tuple(bench.camera.roi):
                frame = frame - cal["dark_frame"] * exposure_s / float(cal["exposure_s"])
        return frame

    def _truth_extras(self, bench: Any, phases: np.ndarray, flat: np.ndarray) -> dict[str, float]:
        """Simulated stations only: the noiseless fidelity of these patterns right now."""
        truth = self.station.ground_truth
        if truth is None:
            return {}
        from labpnn.control.metrics import pearson_fidelity

        optics = ProjectionOptics(
            tm=np.asarray(truth["tm_medium"]),
            reference=np.asarray(truth["reference_field"]),
            pooling=pooling_matrix((bench.camera.roi[3], bench.camera.roi[2]), bench.pool_spec),
        )
        if optics.tm.shape[1] != phases.shape[1]:
            return {}
        truth_fidelity = pearson_fidelity(optics.intensity(phases), flat, flat=True)
        return {"noiseless_fidelity": float(np.mean(truth_fidelity))}

    # -- checkpoints ------------------------------------------------------------------------
    def _checkpoint(self, bench: Any, phases: np.ndarray, done: int, rows: list) -> None:
        from labpnn.learning.checkpoint import split_state

        arrays, world = split_state(bench.state_dict(), "world")
        arrays["patterns"] = phase_codes(phases)
        meta = {
            "format": CHECKPOINT_FORMAT,
            "procedure": self.name,
            "done": done,
            "rows": rows,
            "world": world,
            "bench_queries": bench.queries,
            "bench_hardware_s": bench.hardware_s,
            "clock_s": self.projector.time_s,
            "baseline": self.baseline,
        }
        self.run.checkpoint(arrays, meta)

    def _resume(self, bench: Any) -> tuple[np.ndarray, int, list]:
        from labpnn.learning.checkpoint import join_state

        arrays, meta = self.resume_state
        if meta.get("format") != CHECKPOINT_FORMAT or meta.get("procedure") != self.name:
            raise BadInput(f"this checkpoint was not written by {self.name}; cannot resume it")
        bench.load_state_dict(join_state(meta["world"], arrays))
        bench.queries, bench.hardware_s = (
            int(meta["bench_queries"]),
            float(meta["bench_hardware_s"]),
        )
        self.projector.t0 = bench.clock.now() - float(meta["clock_s"])
        rows = list(meta["rows"])
        self.baseline = meta.get("baseline")
        self.relog(rows)
        return np.asarray(arrays["patterns"], dtype=np.uint8), int(meta["done"]), rows
