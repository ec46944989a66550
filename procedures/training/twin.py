"""``fit-twin``: measure input/output pairs on the bench, fit a digital twin, register it.

The twin models the bench as the training procedures see it (a :class:`LabLayer`, standardised
on random probes where the bench's default or ``standardise=on`` asks for it). Inputs are drawn uniformly from the bench's probe
interval (0..1: tone amplitudes, metasurface levels, SLM phases in turns). The twin goes into the
calibration registry as kind ``twin``: its arrays are the twin's state tensors (``twin.<name>``)
and the standardisation (``standardise.mean``/``standardise.std``); its metrics say what fitting
cost (``queries``, ``hardware_s``, ``digital_flops``) and how well it fits
(``validation_nrmse``). ``train-pat`` and ``train-insilico`` use the latest one.

Two kinds of twin (``twin_model``): an MLP fitted on ``twin_samples`` measured pairs, and on
optical benches the physics twin (:class:`~labpnn.learning.TransmissionMatrixTwin`) built from
the latest ``calibrate-tm`` TM, whose per-output gain and offset are fitted on ``tm_pairs``
pairs. An MLP cannot learn a 256-phase speckle layer (validation NRMSE 0.72 from 20 000 pairs);
the TM twin reaches 0.103 from calibrate-tm's 1096 frames and 500 pairs, so ``auto`` picks it on
optical benches. Its cost counts the TM's frames too.

Example::

    labpnn run fit-twin --station acoustic-sim --set twin_samples=10000
    labpnn run calibrate-tm --station optical-sim && labpnn run fit-twin --station optical-sim
"""

from __future__ import annotations

import math
import time
from typing import Any, ClassVar

import numpy as np
import torch

from labpnn.calibration.tm import reference_amplitude
from labpnn.errors import BadInput
from labpnn.learning import DigitalTwin, TransmissionMatrixTwin, fit_output_map, fit_twin
from labpnn.procedure import (
    Estimate,
    FloatParameter,
    IntegerParameter,
    LabProcedure,
    ListParameter,
    Parameter,
)
from labpnn.procedures.training.common import BenchAccess, seconds_per_query
from labpnn.procedures.training.ff import parse_widths
from labpnn.procedures.training.layers import (
    FeatureLayer,
    FeatureTwin,
    LabLayer,
    input_representation,
    input_representation_from,
)
from labpnn.recalibrate import auto_recalibrate_enabled, ensure_calibration

__all__ = [
    "FitTwin",
    "TwinParameters",
    "fit_bench_twin",
    "load_twin",
    "save_twin",
    "blank_twin",
    "transmission_matrix_twin",
    "warn_if_poor_twin",
]

TWIN_KIND = "twin"


class TwinParameters:
    """Mixin: how a twin is fitted (shared by fit-twin, train-pat and train-insilico)."""

    twin_samples = IntegerParameter(
        "Measured pairs for the twin", default=10_000, minimum=10, maximum=10**8
    )
    twin_epochs = IntegerParameter("Twin fitting epochs", default=200, minimum=1, maximum=100_000)
    twin_hidden = Parameter("Twin hidden widths, comma separated", default="128,128")
    twin_lr = FloatParameter("Twin learning rate", default=1e-3, minimum=0.0, maximum=10.0)
    twin_model = ListParameter(
        "Twin model (mlp = fitted on twin_samples pairs; tm = an optical bench's physics from "
        "its calibrate-tm TM; auto = tm on optical benches, else mlp)",
        choices=["auto", "mlp", "tm"],
        default="auto",
    )
    tm_pairs = IntegerParameter(
        "Measured pairs for a TM twin's output map", default=500, minimum=10, maximum=100_000
    )

    def check_station_config(self, config: Any) -> None:
        """``twin_hidden`` and ``twin_model`` too: refused by dry runs, the queue and schedules,
        not at the start."""
        super().check_station_config(config)  # type: ignore[misc]  # the procedure's
        parse_widths(self.twin_hidden, "twin_hidden")
        if self.twin_model == "tm" and config.bench.kind != "optical":
            raise BadInput(f"twin_model=tm models an optical bench (SLM, medium, camera); the "
                           f"{config.bench.kind} bench needs twin_model=mlp")  # fmt: skip

    def twin_pairs(self) -> int:
        """The pairs that fitting this run's twin measures (a TM's frames not included)."""
        kind = getattr(self, "bench_kind", "")
        return int(self.tm_pairs if self.twin_model_for(kind) == "tm" else self.twin_samples)

    def require_tm_if_needed(self) -> None:
        """A TM twin is built from the registry's TM: without one (and no auto-recalibration)
        the run is refused at once, saying to run calibrate-tm first."""
        kind = getattr(self, "bench_kind", "")
        if self.twin_model_for(kind) == "tm" and not auto_recalibrate_enabled(self):
            self.registry.require("tm", "calibrate-tm")

    def twin_model_for(self, bench_kind: str) -> str:
        """``twin_model`` with ``auto`` resolved for this bench."""
        if self.twin_model == "auto":
            return "tm" if bench_kind == "optical" else "mlp"
        return str(self.twin_model)


def blank_twin(meta: dict) -> torch.nn.Module:
    """An unfitted twin of the shape ``meta`` describes (to load fitted tensors into)."""
    if meta.get("model") == "tm":
        rows, cols = (int(v) for v in meta["image_shape"])
        placeholder = TransmissionMatrixTwin(
            torch.zeros(rows * cols, int(meta["n_in"]), dtype=torch.complex64),
            torch.ones(rows * cols), (rows, cols), pool=tuple(meta["pool"]),
            detect=str(meta["detect"]), input_period=float(meta["input_period"]),
        )  # fmt: skip
        return placeholder.eval().requires_grad_(False)
    inputs = input_representation_from(meta)
    n_in = int(meta["n_in"])
    twin: torch.nn.Module = DigitalTwin(
        inputs.width(n_in) if inputs else n_in,
        int(meta["n_out"]),
        tuple(int(w) for w in meta["hidden"]),
    )
    if inputs is not None:
        twin = FeatureTwin(twin, inputs)
    return twin.eval().requires_grad_(False)


# Above this validation NRMSE a twin predicts the bench hardly better than its mean.
POOR_TWIN_NRMSE = 0.5


def fit_bench_twin(
    procedure: Any, layer: LabLayer, probe_cost: dict
) -> tuple[torch.nn.Module, dict]:
    """Measure ``twin_samples`` random inputs through ``layer`` and fit a twin to them.

    The twin sees the inputs as :func:`input_representation` says: ``[cos, sin]`` of periodic
    inputs (SLM phases), the code a bench writes (metasurface bits), or as they are; the first
    two are wrapped in a :class:`FeatureTwin`. Returns the twin and the JSON description
    that :func:`blank_twin` and the registry use. The twin's ``report`` counts the
    standardisation probes as well as the measured pairs.
    """
    if procedure.twin_model_for(procedure.bench_kind) == "tm":
        return _fit_tm_twin(procedure, layer, probe_cost)
    defaults = procedure.bench_defaults
    low, high = defaults.probe
    hidden = parse_widths(procedure.twin_hidden, "twin_hidden")
    procedure.log.info(
        "fitting a twin of the %s bench on %d measured pairs (hidden %s)",
        procedure.bench_kind, procedure.twin_samples, list(hidden),
    )  # fmt: skip
    start = time.perf_counter()
    inputs = input_representation(layer, defaults.input_period)
    measured = FeatureLayer(layer, inputs) if inputs else layer
    # The twin models the bench as standardised on the probes: a running centre (recentre)
    # would follow the twin data's own distribution while the pairs are measured.
    recentre, layer.recentre = layer.recentre, False
    try:
        twin = fit_twin(
            measured,
            int(procedure.twin_samples),
            measured.sample
            if inputs
            else lambda n, generator: (
                low + (high - low) * torch.rand(n, layer.n_in, generator=generator)
            ),
            hidden=hidden,
            epochs=int(procedure.twin_epochs),
            lr=float(procedure.twin_lr),
            seed=int(procedure.seed),
            # feeds the watchdog and honours an abort request during a long fit
            on_epoch=lambda done, total, loss: procedure.progress(done, total, twin_loss=loss),
        )
    finally:
        layer.recentre = recentre
    report = _book_data(twin, start, probe_cost)
    meta = {
        **_described(procedure, layer, "mlp"),
        "hidden": list(hidden),
        **(inputs.describe() if inputs else {}),  # input_period or input_code
        # how it was fitted, so a run that reuses it from the registry can say so
        "samples": int(procedure.twin_samples),
        "epochs": int(procedure.twin_epochs),
        "lr": float(procedure.twin_lr),
    }
    wrapped: torch.nn.Module = twin
    if inputs:
        wrapped = FeatureTwin(twin, inputs).eval().requires_grad_(False)
    nrmse = report.get("validation_nrmse")
    procedure.log.info(
        "twin fitted: validation NRMSE %.3f (0 is perfect, 1 predicts only the mean)",
        float("nan") if nrmse is None else nrmse,
    )
    warn_if_poor_twin(procedure, nrmse, "the twin")
    return wrapped, {**meta, **report}


def _fit_tm_twin(procedure: Any, layer: LabLayer, probe_cost: dict) -> tuple[Any, dict]:
    """:func:`fit_bench_twin` for ``twin_model=tm``: the latest TM (recorded in the run file;
    measured first with ``calibration.auto_recalibrate``) and a fitted output map."""
    start = time.perf_counter()
    camera = layer.layer.camera
    exposure = camera.exposure_s
    try:
        cal = ensure_calibration(procedure, "tm", "calibrate-tm")
    finally:
        # a calibration run inline (auto_recalibrate) may have changed the exposure; the
        # outputs were standardised at this one, and the twin is rescaled to it
        if camera.exposure_s != exposure:
            camera.exposure_s = exposure
    twin = transmission_matrix_twin(layer.layer, cal.arrays())
    pairs = int(procedure.tm_pairs)
    procedure.log.info("a TM twin from calibration #%s (%d pixels with a reference below 1 %% of "
                       "its mean); fitting its output map on %d pairs",
                       cal.id, twin.floored_pixels, pairs)  # fmt: skip
    low, high = procedure.bench_defaults.probe
    recentre, layer.recentre = layer.recentre, False  # as in fit_bench_twin
    try:
        fit_output_map(twin, layer, pairs,
                       lambda n, generator: low + (high - low) * torch.rand(
                           n, layer.n_in, generator=generator),
                       seed=int(procedure.seed))  # fmt: skip
    finally:
        layer.recentre = recentre
    procedure.progress(1, 1)
    # the twin's data: the TM's phase-stepping frames, the probes and the output map's pairs
    report = _book_data(twin, start, probe_cost, cal.metrics)
    report["tm_queries"] = int(cal.metrics.get("queries", 0))
    meta = {
        **_described(procedure, layer, "tm"),
        "image_shape": list(twin.image_shape),
        "pool": list(twin.pool),
        "detect": twin.detect,
        "input_period": twin.input_period,
        "samples": pairs,
        "tm_registry_id": int(cal.id),
        "exposure_s": float(exposure),
    }
    procedure.log.info("TM twin fitted: validation NRMSE %.3f (0 is perfect, 1 predicts only "
                       "the mean)", float(report.get("validation_nrmse") or np.nan))  # fmt: skip
    warn_if_poor_twin(procedure, report.get("validation_nrmse"), "the TM twin", "tm")
    return twin, {**meta, **report}


# |s|² floor of a TM twin, as a fraction of its mean: on S6's bench (seed 0, 500 pairs) the
# validation NRMSE was 0.116 at 0.05, 0.099 at 0.02, 0.096 at 0.01, 0.097 at 0.003, 0.100 at 1e-6
TM_TWIN_REFERENCE_FLOOR = 0.01


def transmission_matrix_twin(
    bench: Any, arrays: dict[str, np.ndarray], reference_floor: float = TM_TWIN_REFERENCE_FLOOR
) -> TransmissionMatrixTwin:
    """The physics twin of an optical bench from its calibrate-tm arrays (unfitted output map).

    The TM must be of this bench's camera ROI and macropixels, one mode per macropixel. If the
    camera's exposure changed since the calibration, the TM and reference are rescaled to it.
    A TM of grouped macropixels (``n_modes`` below their number) or of another ROI is refused.
    """
    missing = [key for key in ("tm", "groups", "roi", "exposure_s", "reference_intensity")
               if key not in arrays]  # fmt: skip
    if missing:
        raise BadInput(f"the registered TM lacks {', '.join(missing)} (registered by an older "
                       "calibrate-tm); run calibrate-tm again")  # fmt: skip
    tm = np.asarray(arrays["tm"], dtype=np.complex128)
    groups = np.asarray(arrays["groups"])
    roi = tuple(int(v) for v in np.asarray(arrays["roi"]).reshape(-1))
    if roi != tuple(bench.camera.roi):
        raise BadInput(f"the TM was calibrated on camera ROI {list(roi)}, the bench reads "
                       f"{list(bench.camera.roi)}; run calibrate-tm again")  # fmt: skip
    if groups.shape != tuple(bench.macropixels) or tm.shape[0] != roi[2] * roi[3]:
        raise BadInput(f"the TM maps {'x'.join(map(str, groups.shape))} macropixels onto "
                       f"{tm.shape[0]} pixels, the bench has "
                       f"{'x'.join(map(str, bench.macropixels))} and {roi[2] * roi[3]}; run "
                       "calibrate-tm again")  # fmt: skip
    groups = groups.reshape(-1)
    counts = np.bincount(groups)
    if counts.max() > 1:
        # a block's column is the sum of its macropixels' columns, which it cannot separate:
        # 1/k of it each predicts the interference term with correlation about 1/sqrt(k)
        raise BadInput(f"the TM moves the macropixels in blocks of {counts.max()} "
                       f"({tm.shape[1]} modes); a twin needs one mode per macropixel: run "
                       "calibrate-tm with n_modes=0")  # fmt: skip
    ratio = float(bench.camera.exposure_s) / float(arrays["exposure_s"])
    columns = tm[:, groups] * ratio  # A = conj(s)·T scales with the exposure
    s, floored = reference_amplitude(np.asarray(arrays["reference_intensity"]) * ratio,
                                     reference_floor)  # fmt: skip
    # what calibrate-tm took off as the camera's dark level, the bench reads (a black level:
    # not rescaled with the exposure)
    dark = np.asarray(arrays.get("dark_level", 0.0), dtype=np.float64).reshape(-1)
    if bench.dark_frame is not None:
        dark = dark - np.asarray(bench.dark_frame, dtype=np.float64).reshape(-1)
    twin = TransmissionMatrixTwin(
        torch.from_numpy(columns),
        torch.from_numpy(s),
        (roi[3], roi[2]),
        pool=bench.pool_spec,
        detect=bench.detect,
        full_scale=float(bench.full_scale),
        input_period=1.0,  # OpticalBench reads its inputs as phases in turns
        dark=torch.from_numpy(dark),
    )
    twin.floored_pixels = floored
    return twin


def _book_data(twin: Any, start: float, *costs: dict) -> dict:
    """The fitted twin's ``report`` with the other measurements it cost (probes, a TM's
    frames) and the fitting's wall time; ``twin.report`` becomes it."""
    report = dict(twin.report)
    for cost in costs:
        report["queries"] += int(cost.get("queries", 0))
        report["hardware_s"] += float(cost.get("hardware_s", 0.0))
    report["fit_wall_s"] = time.perf_counter() - start
    twin.report = report
    return report


def _described(procedure: Any, layer: LabLayer, model: str) -> dict:
    """What every registered twin's description says, whatever its model."""
    return {
        "model": model,
        "n_in": layer.n_in,
        "n_out": layer.n_out,
        "probe": list(procedure.bench_defaults.probe),
        "standardised": layer.standardised,
        "bench": procedure.bench_kind,
    }


def warn_if_poor_twin(procedure: Any, nrmse: float | None, which: str, model: str = "mlp") -> bool:
    """Warn (and return True) when a twin's validation NRMSE is above :data:`POOR_TWIN_NRMSE`."""
    if nrmse is None or not nrmse > POOR_TWIN_NRMSE:
        return False
    remedy = (
        "calibrate the TM again (the medium may have moved since)"
        if model == "tm"
        else "measure more pairs (twin_samples)"
    )
    procedure.log.warning(
        "%s explains little of the %s bench (validation NRMSE %.2f, above %.2f): PAT's "
        "gradients will be poor and in-silico training will not transfer; %s, or train "
        "without a model (train-phyll)",
        which, procedure.bench_kind, nrmse, POOR_TWIN_NRMSE, remedy,
    )  # fmt: skip
    return True


def save_twin(
    procedure: Any,
    twin: torch.nn.Module,
    metrics: dict,
    layer: LabLayer,
    valid_for_s: float | None = None,
) -> int:
    """Store the twin in the calibration registry (kind ``twin``) and in this run's file."""
    arrays = {f"twin.{k}": v.detach().numpy() for k, v in _core(twin).state_dict().items()}
    if layer.standardised:
        arrays["standardise.mean"] = layer.mean.numpy()
        arrays["standardise.std"] = layer.std.numpy()
    for name, value in arrays.items():
        procedure.run.write_array(f"calibration/{name}", value)
    procedure.run.set_attrs("calibration", twin=metrics)
    return procedure.registry.save(
        TWIN_KIND, arrays, metrics=metrics, run_file=procedure.run.path, valid_for_s=valid_for_s
    )


def load_twin(
    registry: Any, layer: LabLayer, standardise: bool, model: str | None = None
) -> tuple[torch.nn.Module, dict] | None:
    """The latest registered twin that fits ``layer``, with the layer set to its standardisation.

    A twin fits when its widths match, it was fitted with (or without) standardisation as
    asked, and it is of ``model`` ("mlp", "tm"; None: either). Its ``report`` is the fitting cost, so trainers count that data (S8). The
    description holds the registry entry itself under ``calibration`` (not JSON: take it out).
    """
    inputs = input_representation(layer)
    code = inputs.describe().get("input_code") if inputs else None
    for cal in reversed(registry.history(TWIN_KIND)):
        meta = cal.metrics
        if cal.expired:
            continue
        if (int(meta.get("n_in", -1)), int(meta.get("n_out", -1))) != (layer.n_in, layer.n_out):
            continue
        if bool(meta.get("standardised")) != bool(standardise):
            continue
        if model is not None and meta.get("model", "mlp") != model:
            continue
        if meta.get("model") == "tm" and _stale_tm_twin(registry, layer, meta):
            continue
        if meta.get("input_code") != code:
            # fitted on another encoding of the inputs (the layout changed since), or on the
            # raw inputs of a coded bench (registered before twins were fitted on the code)
            continue
        arrays = cal.arrays()
        twin = blank_twin(meta)
        state = {k.removeprefix("twin."): torch.from_numpy(v) for k, v in arrays.items()
                 if k.startswith("twin.")}  # fmt: skip
        _core(twin).load_state_dict(state)
        if standardise:
            layer.set_statistics(arrays["standardise.mean"], arrays["standardise.std"])
        _core(twin).report = {
            key: meta[key] for key in ("queries", "hardware_s", "digital_flops") if key in meta
        }
        described = {"registry_id": cal.id, "run_file": cal.run_file, "age_s": cal.age_s}
        return twin, {**meta, **described, "calibration": cal}
    return None


def _stale_tm_twin(registry: Any, layer: LabLayer, meta: dict) -> bool:
    """A TM twin is stale once a newer TM is registered (the medium was measured again) or
    the camera's exposure is not the one it was fitted at (its output map would be off)."""
    newest = registry.latest("tm")
    if newest is not None and newest.id != meta.get("tm_registry_id"):
        return True
    camera = getattr(layer.layer, "camera", None)
    fitted_at = meta.get("exposure_s")
    if camera is None or fitted_at is None:
        return False
    return not math.isclose(float(camera.exposure_s), float(fitted_at), rel_tol=1e-6)


def _core(twin: torch.nn.Module) -> torch.nn.Module:
    """The DigitalTwin inside any input wrapper."""
    return twin.twin if isinstance(twin, FeatureTwin) else twin


class FitTwin(TwinParameters, BenchAccess, LabProcedure):
    """Fit a digital twin of the bench's physical layer and put it in the calibration registry."""

    name: ClassVar[str] = "fit-twin"
    bench_kinds: ClassVar[tuple[str, ...]] = ("acoustic", "microwave", "optical")
    default_station: ClassVar[str] = "acoustic-sim"
    # Measuring reports after every query and fitting after every epoch.
    watchdog_s: ClassVar[float] = 900.0

    seed = IntegerParameter("Seed", default=0, minimum=0, maximum=2**31 - 1)
    valid_for_h = FloatParameter(
        "Valid for (0 = until replaced)", units="h", default=0.0, minimum=0.0, maximum=1e6
    )

    @property
    def bench_kind(self) -> str:
        station = (
            self.station if self.station is not None else getattr(self, "station_config", None)
        )
        return station.bench.kind if station is not None else ""

    def validate(self) -> None:
        super().validate()  # twin_hidden: TwinParameters.check_station_config
        if self.twin_samples < 10:
            raise BadInput(f"twin_samples={self.twin_samples}: measure at least 10 pairs")
        self.require_tm_if_needed()

    def estimate(self) -> Estimate:
        queries = self.twin_pairs() + (int(self.standardise_samples) if self.standardised else 0)
        config = getattr(self, "station_config", None)
        per_query = seconds_per_query(config) if config is not None else 0.0
        return Estimate(queries=queries, seconds=queries * per_query, note="hardware time only")

    def execute(self) -> None:
        layer = self.physical_layer()
        probe_cost = self.standardise_on_probes()
        twin, metrics = fit_bench_twin(self, layer, probe_cost)
        valid_for_s = float(self.valid_for_h) * 3600 or None
        registry_id = save_twin(self, twin, metrics, layer, valid_for_s)
        self.run.set_summary(
            queries=int(metrics["queries"]),
            hardware_s=float(metrics["hardware_s"]),
            digital_flops=float(metrics["digital_flops"]),
            twin_validation_nrmse=float(metrics.get("validation_nrmse") or np.nan),
            twin_train_nrmse=float(metrics.get("train_nrmse") or np.nan),
            registry_id=int(registry_id),
        )
        self.progress(1, 1)
