"""The base class of every labpnn procedure: a pymeasure ``Procedure`` with a run context.

pymeasure supplies the typed parameters, so the CLI options, the GUI form and the
HDF5 metadata all come from one declaration. Its in-process Worker/Manager are not
used: :mod:`labpnn.runner` runs each procedure in its own process and gives it

* ``self.station`` — the connected instruments by role (``self.station["camera"]``);
* ``self.run`` — the :class:`~labpnn.storage.RunWriter` of this run's HDF5 file;
* ``self.registry`` — the calibration registry for this bench;
* ``self.operator`` — structured requests to a person (see :mod:`labpnn.operator`);
* ``self.log`` — a logger whose records also go into the run file.

A procedure calls :meth:`progress` at every step: it draws the progress bar, feeds
the watchdog, and raises :class:`~labpnn.errors.RunAborted` once a stop was requested.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar

from pymeasure.experiment import (  # noqa: F401  (re-exported for procedure authors)
    BooleanParameter,
    FloatParameter,
    IntegerParameter,
    ListParameter,
    Parameter,
    Procedure,
)

from labpnn.errors import BadInput, LimitError, RunAborted, did_you_mean


def allowed(spec: Parameter) -> str:
    """What a parameter accepts, as the end of an error message ("must be ...")."""
    if isinstance(spec, BooleanParameter):
        return "must be true or false"
    if isinstance(spec, ListParameter):
        return f"must be one of {', '.join(map(str, spec.choices or ()))}"
    if isinstance(spec, (IntegerParameter, FloatParameter)):
        units = f" {spec.units}" if getattr(spec, "units", None) else ""
        if isinstance(spec, IntegerParameter):
            return f"must be an integer in {spec.minimum}..{spec.maximum}{units}"
        return f"must be a number in {spec.minimum:g}..{spec.maximum:g}{units}"
    return "must be text"


@dataclass
class Estimate:
    """What ``--dry-run`` reports before a long run starts."""

    queries: int
    seconds: float
    note: str = ""


class LabProcedure(Procedure):
    name: ClassVar[str] = ""  # the CLI name, e.g. "calibrate-tm"
    bench_kinds: ClassVar[tuple[str, ...]] = ()
    roles: ClassVar[tuple[str, ...]] = ()
    supports_pause: ClassVar[bool] = False
    # Needs no instrument at all (a digital reference, e.g. train-ff): runs lock none.
    digital_only: ClassVar[bool] = False
    supports_resume: ClassVar[bool] = False
    watchdog_s: ClassVar[float] = 300.0  # longest silence between progress() calls
    # Parameters that set an instrument setting, {parameter: (role, setting)}: checked against
    # the driver's range and the station's lab limits before connecting (0 = the station's).
    station_settings: ClassVar[dict[str, tuple[str, str]]] = {}

    station: Any = None
    run: Any = None
    registry: Any = None
    operator: Any = None  # labpnn.operator.Operator: requests to a person
    log: logging.Logger = logging.getLogger("labpnn.run")
    resume_state: Any = None  # (arrays, meta) of the checkpoint to resume from
    # The run file this run resumes or reruns: path, run_id, status, parameters.
    previous_run: Any = None
    progress_bar_shown: bool = False  # whether the runner draws a terminal progress bar

    def __init__(self, **kwargs: Any):
        self._progress_hook = None
        self._stop_requested = None
        self._pause_check = None
        super().__init__(**kwargs)

    # -- parameters ------------------------------------------------------------------
    @classmethod
    def parameter_specs(cls) -> dict[str, Any]:
        return cls()._parameters

    def set_parameter(self, key: str, raw: Any) -> None:
        """Set one parameter from text or a value, with the parameter's own validation."""
        params = self._parameters
        if key not in params:
            known = ", ".join(sorted(params)) or "none"
            hint = did_you_mean([key], params)
            raise BadInput(f"{self.name}: unknown parameter '{key}'{hint} (known: {known})")
        spec = params[key]
        try:
            spec.value = raw
        except (ValueError, TypeError):
            raise BadInput(f"{self.name}: {key}={raw!r} is invalid: {allowed(spec)}") from None
        if isinstance(spec, FloatParameter) and not math.isfinite(spec.value):
            # pymeasure's range checks compare, and every comparison with NaN is False.
            raise BadInput(
                f"{self.name}: {key}={raw!r} is invalid: "
                f"{allowed(spec).replace('a number', 'a finite number')}"
            )
        setattr(self, key, spec.value)

    def parameter_values(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self._parameters}

    # -- hooks a procedure may override -------------------------------------------------
    def estimate(self) -> Estimate:
        """Hardware queries and duration, without touching hardware (``--dry-run``)."""
        return Estimate(queries=0, seconds=0.0, note="no estimate for this procedure")

    def record_calibration(self, cal: Any) -> Any:
        """Note in the run file which calibration this run uses (``/calibrations_used/<kind>``)
        and return it, so a reader can tell a run on a fresh TM from one on a stale one."""
        if cal is not None and self.run is not None:
            ledger = getattr(self.registry, "ledger", None)
            self.run.set_attrs(f"calibrations_used/{cal.kind}", **cal.provenance(ledger))
        return cal

    def check_station_config(self, config: Any) -> None:
        """What can be checked before connecting: the one preflight of runs, dry runs, queue
        and schedule entries and the GUI launcher (a subclass adds its own after ``super()``)."""
        from labpnn.bench import check_layout

        check_layout(config.bench.kind, config.bench.layout)
        if self.bench_kinds and config.bench.kind not in self.bench_kinds:
            raise BadInput(
                f"{self.name} runs on {'/'.join(self.bench_kinds)} benches, but station "
                f"'{config.name}' is {'an' if config.bench.kind[:1] in 'aeiou' else 'a'} "
                f"{config.bench.kind} bench"
            )
        missing = [role for role in self.roles if role not in config.instruments]
        if missing:
            raise BadInput(
                f"{self.name} needs the role(s) {', '.join(missing)}, which station "
                f"'{config.name}' does not have (it has {', '.join(config.instruments) or 'none'})"
            )
        for key, (role, setting) in self.station_settings.items():
            value = getattr(self, key)
            probe = config.settings_probe(role) if value else None
            if probe is not None:
                try:
                    probe.check(setting, value)
                except LimitError as exc:
                    raise BadInput(f"{self.name}: {exc}") from None

    def validate(self) -> None:
        """Check parameters against the connected station; raise BadInput if wrong."""
        self.check_station_config(self.station.config)  # roles included

    def check_resume(self, previous: dict[str, Any]) -> None:
        """Before the station connects: refuse (BadInput) a resume that cannot continue the run.

        ``previous`` describes the run file (``path``, ``run_id``, ``status``, ``parameters``);
        ``self.resume_state`` holds its checkpoint and ``self.station_config`` the station.
        """

    def startup(self) -> None:
        pass

    def execute(self) -> None:
        raise NotImplementedError

    def shutdown(self) -> None:
        pass

    # -- services for execute() --------------------------------------------------------
    def should_stop(self) -> bool:
        return bool(self._stop_requested and self._stop_requested())

    def progress(self, done: float, total: float, pause_here: bool = True, **info: Any) -> None:
        """Report progress; a paused run holds here, an aborted one stops here.

        ``pause_here=False`` for heartbeats in the middle of a unit of work that must not be
        split by a pause (a training batch measured across a pause would mix two media).
        """
        if self._progress_hook is not None:
            self._progress_hook(done, total, info)
        if pause_here and self.supports_pause and self._pause_check is not None:
            self._pause_check()  # blocks here while the operator holds the run paused
        if self.should_stop():
            raise RunAborted("stop requested")
