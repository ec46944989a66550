"""What the control procedures share: parameters, targets, the bench as a projector, records.

A control run projects held-out target images through the medium and scores each
projection by its 2-D Pearson fidelity. Every procedure here:

* measures through :class:`BenchProjector`, which streams each displayed SLM pattern
  (``/frames/slm``, grey levels) and each camera image (``/frames/camera``) into the run
  file, and keeps the watchdog fed between chunks;
* writes the targets (``/control/targets``), the projections of every evaluation
  (``/frames/projections``), the fidelity of every target at every evaluation
  (``/traces/fidelity``) and the latest patterns for the targets (``/control/patterns``);
* logs one ``/results`` row per evaluation: ``iteration``, ``queries``, ``fidelity``,
  ``fidelity_std``, ``fidelity_p10``, ``mse``, ``psnr_db``, ``hardware_s``, ``time_s``
  (the bench clock since the run started) and ``wall_s``;
* states the SLM degrees of freedom it controls per target pixel in the root attributes
  (``controlled_dof``, ``dof_per_target_pixel``; control-tm controls as many as its TM has
  modes).

Learned controllers also log ``/timing`` rows per round: ``digital_s`` (wall time not spent
measuring: fitting and training), ``digital_cpu_s`` (the same in process CPU time, all
threads: steadier than wall time on a shared machine), ``hardware_s`` (bench time of the
round's measurements, on the station clock) and ``measure_wall_s`` (wall time inside the
bench calls).
"""

from __future__ import annotations

import time
import warnings
from typing import Any, ClassVar

import numpy as np

from labpnn.control.metrics import (
    TargetError,
    chance_fidelity,
    mse,
    pearson_fidelity,
    psnr,
    summarize,
)
from labpnn.control.speckle_model import PHASE_LEVELS, phase_codes
from labpnn.control.targets import TargetResampled, load_targets
from labpnn.errors import BadInput
from labpnn.procedure import (
    Estimate,
    FloatParameter,
    IntegerParameter,
    LabProcedure,
    Parameter,
)

MIN_DOF_RATIO = 4.0  # SLM macropixels per target pixel below which phase-only control suffers
BASELINE_PATTERNS = 32  # random SLM patterns whose images give the chance-level fidelity

_FIDELITY = "2-D Pearson r of projected camera image and target, "
_TRUTH = "; simulated stations only (needs the simulator's ground truth)"
#: ``{column: (units, description)}`` of ``/results`` (and ``/summary``) in control runs
COLUMN_DOCS: dict[str, tuple[str, str]] = {
    "iteration": ("count", "outer iteration of the evaluation (0 = after the probe round)"),
    "queries": ("count", "hardware queries (camera frames) so far"),
    "fidelity": ("1 (Pearson r)", _FIDELITY + "mean over the held-out targets"),
    "fidelity_std": ("1 (Pearson r)", "std of that fidelity over the targets"),
    "fidelity_p10": ("1 (Pearson r)", "10th percentile of that fidelity over the targets"),
    "mse": ("1 (target peak = 1)", "mean squared error, projection least-squares scaled"),
    "psnr_db": ("dB", "peak signal-to-noise ratio of the projection, target peak = 1"),
    "hardware_s": ("s", "bench time on the station's clock (simulated time on a simulated bench)"),
    "time_s": ("s", "bench clock since the run started"),
    "wall_s": ("s", "wall time of the evaluation's measurements"),
    "noiseless_fidelity": (
        "1 (Pearson r)",
        "fidelity of the same patterns through the true, noiseless medium now" + _TRUTH,
    ),
    "model_tm_pearson": (
        "1 (|Pearson r|)",
        "mean row |Pearson| of the model network's TM against the true TM" + _TRUTH,
    ),
    "saturated_frames": ("count", "measured camera frames with a pixel at full scale"),
    "baseline_fidelity": (
        "1 (Pearson r)",
        _FIDELITY + "for uniformly random SLM phases: mean over images × targets (chance level)",
    ),
    "baseline_fidelity_std": ("1 (Pearson r)", "std of that chance-level fidelity"),
    "baseline_queries": ("count", "random patterns measured for the baseline"),
}


def _station_layout(proc: Any) -> dict[str, Any]:
    station = proc.station if proc.station is not None else getattr(proc, "station_config", None)
    return dict(station.bench.layout) if station is not None else {}


def _pair(value: Any, default: int) -> tuple[int, int]:
    if value is None:
        return default, default
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    a, b = (int(v) for v in value)
    return a, b


def stream_attrs(bench: Any) -> dict[str, dict[str, Any]]:
    """What ``/frames/slm``, ``/frames/camera`` and ``/frames/projections`` hold, as attrs."""
    x, y, w, h = (int(v) for v in bench.camera.roi)
    kernel, stride, padding = bench.pool_spec
    ph, pw = bench.pooled_shape
    amplitude = bench.detect == "amplitude"
    image = (
        f"camera ROI [x, y, w, h] = {[x, y, w, h]} sensor pixels, "
        + ("dark frame subtracted, " if bench.dark_frame is not None else "")
        + f"divided by full scale ({int(bench.full_scale)} ADU), "
        + ("square root taken (amplitude), " if amplitude else "")
        + f"average-pooled (kernel {kernel}, stride {stride}, padding {padding}) to {ph} x {pw}"
    )
    unit = "sqrt(fraction of full scale)" if amplitude else "fraction of full scale"
    ny, nx = bench.macropixels
    return {
        "slm": {
            "unit": "phase code",
            "description": f"the SLM pattern of each measurement, one code per macropixel "
            f"({ny} x {nx} macropixels, not SLM pixels): phase = code * 2π/{PHASE_LEVELS} rad "
            "(nominal); the SLM's phase-to-grey table turns it into the displayed grey level",
        },
        "camera": {
            "unit": unit,
            "description": f"the camera image of each measurement (rows as in slm): {image}",
        },
        "projections": {
            "unit": unit,
            "description": "the camera image of every target at each evaluation, in the "
            f"order of control/target_names: {image}",
        },
    }


class BenchProjector:
    """Phases ``[B, N]`` (rad) → camera images ``[B, P]``, recorded in the run file.

    Images are the bench's intensity decoding: the camera ROI as a fraction of full scale,
    pooled by ``layout.pool``.
    """

    def __init__(self, proc: ControlProcedure, bench: Any, chunk: int = 256):
        self.proc, self.bench, self.chunk = proc, bench, int(chunk)
        self.t0 = bench.clock.now()
        self.wall_s = 0.0  # wall time spent measuring (a simulator's compute, or hardware)
        self.cpu_s = 0.0  # this process's CPU time spent measuring
        self.saturated_frames = 0
        self.frame_attrs = stream_attrs(bench)
        self.exposure_s = float(bench.camera.exposure_s)  # set once, by open_bench

    @property
    def time_s(self) -> float:
        return self.bench.clock.now() - self.t0

    def __call__(self, phases: np.ndarray) -> np.ndarray:
        started, cpu = time.perf_counter(), time.process_time()
        try:
            return self._measure(phases)
        finally:
            self.wall_s += time.perf_counter() - started
            self.cpu_s += time.process_time() - cpu

    def _measure(self, phases: np.ndarray) -> np.ndarray:
        bench = self.bench
        phases = np.asarray(phases, dtype=np.float64)
        ny, nx = bench.macropixels
        h, w = bench.pooled_shape
        out = np.empty((len(phases), bench.n_out), dtype=np.float32)
        for start in range(0, len(phases), self.chunk):
            batch = phases[start : start + self.chunk]
            frames = bench.acquire(batch.reshape(-1, ny, nx))
            top = bench.full_scale
            saturated = bench.count_saturated(frames, top)
            if saturated and not self.saturated_frames:
                self.proc.log.warning(
                    "camera saturation in %d of %d frames: projected images concentrate the "
                    "light, so lower exposure_s (now %.3g s)",
                    saturated, len(frames), bench.camera.exposure_s,
                )  # fmt: skip
            self.saturated_frames += saturated
            images = bench.decode(frames, overwrite=True, full_scale=top).astype(np.float32)
            out[start : start + len(batch)] = images
            run, about = self.proc.run, self.frame_attrs
            run.append_frames("slm", phase_codes(batch).reshape(-1, ny, nx), **about["slm"])
            run.append_frames("camera", images.reshape(-1, h, w),
                              exposure_s=self.exposure_s, **about["camera"])  # fmt: skip
            self.proc.tick("measuring")
        return out


class ControlProcedure(LabProcedure):
    """Base of control-tm, control-actor and control-vae (see the module docstring)."""

    bench_kinds: ClassVar[tuple[str, ...]] = ("optical",)
    roles: ClassVar[tuple[str, ...]] = ("slm", "camera")
    default_station: ClassVar[str] = "optical-control-sim"
    supports_resume: ClassVar[bool] = True
    watchdog_s: ClassVar[float] = 900.0
    # False where the controller drives the macropixels in blocks and calls record_dof itself
    controls_every_macropixel: ClassVar[bool] = True
    # exposure_s against the camera's range and lab limit, also in dry runs and the queue
    station_settings: ClassVar[dict[str, tuple[str, str]]] = {
        "exposure_s": ("camera", "exposure_s")
    }

    targets = Parameter(
        "Targets (digits, shapes, digits+shapes, or PNG files, folders, globs)",
        default="digits",
    )
    n_targets = IntegerParameter("Held-out digit targets", default=200, minimum=1, maximum=200)
    exposure_s = FloatParameter(
        "Camera exposure (0 = the station's)", units="s", default=0.0, minimum=0.0, maximum=10.0
    )
    seed = IntegerParameter("Seed", default=0, minimum=0, maximum=2**31 - 1)

    # -- shapes from the layout (usable before connecting, for estimates) ------------------
    def layout_sizes(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """(macropixels (ny, nx), target shape (h, w)) from the station's layout."""
        layout = _station_layout(self)
        macro = _pair(layout.get("macropixels", 16), 16)
        roi = layout.get("camera_roi") or (0, 0, 64, 64)
        pool = layout.get("pool", 1)
        if isinstance(pool, dict):
            k, s, p = (
                int(pool.get("kernel", 1)),
                int(pool.get("stride", 1)),
                int(pool.get("padding", 0)),
            )
        else:
            k = s = int(pool or 1)
            p = 0
        w, h = int(roi[2]), int(roi[3])
        return macro, ((h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)

    def seconds_per_query(self) -> float:
        station = getattr(self, "station_config", None) or self.station
        slm = station.instruments.get("slm") if station is not None else None
        options = getattr(slm, "options", None) or {}
        return 1.0 / float(options.get("refresh_hz", 60.0))

    def estimate_queries(self) -> int:
        raise NotImplementedError

    def estimate(self) -> Estimate:
        queries = self.estimate_queries()
        return Estimate(
            queries=queries,
            seconds=queries * self.seconds_per_query(),
            note="hardware time at one frame per SLM refresh; digital training comes on top",
        )

    # -- validation -----------------------------------------------------------------------
    def load_targets(self, shape: tuple[int, int]) -> tuple[np.ndarray, list[str]]:
        """The held-out targets at the camera region's shape; resampling is logged."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TargetResampled)
            try:
                loaded = load_targets(self.targets, shape, int(self.n_targets))
            except TargetError as exc:
                raise BadInput(f"{self.name}: {exc}") from None
        for warning in caught:
            self.log.warning("%s", warning.message)
        return loaded

    def check_station_config(self, config: Any) -> None:
        """Targets against the layout: refused by dry runs, the queue and schedules too."""
        super().check_station_config(config)
        if self.station is None:
            self.station_config = config  # what layout_sizes() reads before connecting
        _macro, shape = self.layout_sizes()
        self.load_targets(shape)  # BadInput now, before the run file exists

    # -- helpers for execute() ------------------------------------------------------------
    def open_bench(self) -> tuple[Any, BenchProjector]:
        from labpnn.bench import make_bench

        bench = make_bench(self.station, detect="intensity")
        if self.exposure_s:
            bench.camera.exposure_s = self.exposure_s
        self.bench = bench
        self.projector = BenchProjector(self, bench)
        self.run.set_attrs(
            "/",
            slm_dof=bench.n_in,
            target_pixels=bench.n_out,
            target_shape=list(bench.pooled_shape),
            exposure_used_s=float(bench.camera.exposure_s),
        )
        if self.controls_every_macropixel:
            self.record_dof(bench.n_in, bench.n_out)
        return bench, self.projector

    def record_dof(self, controlled: int, target_pixels: int, hint: str = "") -> float:
        """State (root attrs) and check the SLM degrees of freedom the run really controls.

        ``dof_per_target_pixel`` is ``controlled_dof / target_pixels``: SCIENCE.md S2 asks
        for 4 or more. A controller that drives the macropixels in blocks controls fewer
        degrees of freedom than the SLM has, and says so here.
        """
        ratio = controlled / target_pixels
        self.run.set_attrs("/", controlled_dof=int(controlled), dof_per_target_pixel=ratio)
        if ratio < MIN_DOF_RATIO:
            self.log.warning(
                "only %.2f controlled SLM degrees of freedom per target pixel (%d : %d); "
                "phase-only projection needs about %g or more, so expect lower fidelity%s",
                ratio, controlled, target_pixels, MIN_DOF_RATIO, hint,
            )  # fmt: skip
        return ratio

    def write_targets(self, targets: np.ndarray, names: list[str]) -> None:
        self.run.write_array("control/targets", targets.astype(np.float32), unit="peak 1",
                             description="the held-out target images, each scaled to a peak "
                             "of 1, at the camera region's (pooled) shape")  # fmt: skip
        self.run.write_array("control/target_names", np.array(names, dtype="S64"),
                             description="name of each target (digit label and index, shape "
                             "or file), in the order of control/targets")  # fmt: skip

    def random_patterns(self, n_macropixels: int, n_targets: int) -> np.ndarray:
        """Uniformly random SLM phases ``[n, N]`` (rad) for the chance-level baseline."""
        rng = np.random.default_rng([int(self.seed), 11])
        return rng.uniform(0.0, 2 * np.pi, (min(n_targets, BASELINE_PATTERNS), n_macropixels))

    def record_baseline(
        self, images: np.ndarray, flat_targets: np.ndarray, queries: int
    ) -> dict[str, float]:
        """The chance level: fidelity of random-input images against the targets (/summary).

        ``queries`` is what measuring ``images`` cost (0 where they were measured anyway).
        """
        chance = chance_fidelity(np.asarray(images).reshape(len(images), -1), flat_targets)
        self.baseline = {
            "baseline_fidelity": float(chance.mean()),
            "baseline_fidelity_std": float(chance.std()),
            "baseline_queries": int(queries),
        }
        self.run.set_summary(**self.baseline)
        self.log.info(
            "chance level: random SLM patterns score fidelity %.3f ± %.3f on these targets",
            chance.mean(), chance.std(),
        )  # fmt: skip
        return self.baseline

    baseline: dict[str, float] | None = None

    def tick(self, stage: str = "") -> None:
        """Feed the watchdog and honour an abort, without moving the progress bar."""
        done, total = getattr(self, "_progress_at", (0.0, 1.0))
        info = {"stage": stage} if stage else {}
        self.progress(done, total, **info)

    def set_progress(self, done: float, total: float, **info: Any) -> None:
        self._progress_at = (done, total)
        self.progress(done, total, **info)

    def record_evaluation(
        self,
        iteration: int,
        queries: int,
        phases: np.ndarray,
        images: np.ndarray,
        targets: np.ndarray,
        wall_s: float,
        **extra: float,
    ) -> dict[str, float]:
        """One ``/results`` row and the projections of one evaluation."""
        flat = targets.reshape(len(targets), -1)
        fidelity = pearson_fidelity(np.nan_to_num(images), flat, flat=True)
        stats = summarize(fidelity)
        row: dict[str, Any] = {
            "iteration": int(iteration),
            "queries": int(queries),
            "fidelity": stats["fidelity"],
            "fidelity_std": stats["fidelity_std"],
            "fidelity_p10": stats["fidelity_p10"],
            "mse": float(np.mean(mse(np.nan_to_num(images), flat, flat=True))),
            "psnr_db": float(np.mean(psnr(np.nan_to_num(images), flat, flat=True))),
            "hardware_s": float(self.bench.hardware_s),
            "time_s": float(self.projector.time_s),
            "wall_s": float(wall_s),
        }
        row.update({k: float(v) for k, v in extra.items()})
        self.run.append_row(**row)
        self.describe_columns(row)
        self.run.append_frames("projections", images.reshape(targets.shape).astype(np.float32),
                               exposure_s=self.projector.exposure_s,
                               **self.projector.frame_attrs["projections"])  # fmt: skip
        self.run.append_trace("fidelity", fidelity.astype(np.float32))  # per target
        self.run.write_array("control/patterns", phase_codes(phases).reshape(
            len(phases), *self.bench.macropixels), unit="phase code",
            description="the latest SLM pattern for each target (order of control/targets), "
            f"one code per macropixel: phase = code * 2π/{PHASE_LEVELS} rad")  # fmt: skip
        if self.baseline is not None:
            self.run.set_summary(**self.baseline)  # a resumed run's too
        self.run.set_summary(
            fidelity=stats["fidelity"],
            fidelity_std=stats["fidelity_std"],
            queries=int(queries),
            hardware_s=float(self.bench.hardware_s),
            saturated_frames=int(self.projector.saturated_frames),
        )
        return row

    def describe_columns(self, row: dict[str, Any]) -> None:
        """Units and descriptions of the ``/results`` columns and ``/summary`` keys (once)."""
        new = [k for k in row if k in COLUMN_DOCS and k not in self._described]
        if not new:
            return
        if not self._described:
            self.run.describe_summary(COLUMN_DOCS)
        self.run.describe(
            {f"results/{k}": dict(zip(("units", "description"), COLUMN_DOCS[k])) for k in new}
        )
        self._described = self._described | set(new)

    _described: frozenset[str] | set[str] = frozenset()

    def relog(self, rows: list[dict[str, Any]]) -> None:
        """Re-append the result rows a resumed checkpoint holds (no projections: not kept)."""
        for row in rows:
            self.run.append_row(**{k: v for k, v in row.items()})
            self.describe_columns(row)

    @staticmethod
    def now() -> float:
        return time.perf_counter()

    # -- the report ------------------------------------------------------------------------
    @classmethod
    def plot_report(cls, f: Any, figure: Any) -> None:
        from labpnn.procedures.control.report import plot_control

        plot_control(f, figure)
