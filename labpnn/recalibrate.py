"""Make sure a procedure starts from a valid calibration, recalibrating first if allowed.

A focusing run at 09:00 on yesterday's TM gives poor results that look like a bug.
So a procedure that needs a calibration calls, at the start of ``execute``::

    cal = ensure_calibration(self, "tm", "calibrate-tm")

It returns the latest calibration of that kind whose validity window contains now
(and, with ``max_age_s``, that is young enough). When there is none:

* by default the run warns (in its log, its file and the ledger) and goes on with
  the newest expired calibration; with no calibration at all it stops with a clear
  error naming the procedure to run;
* when the station config says ``calibration: {auto_recalibrate: true}``, or the
  procedure has a true ``auto_recalibrate`` parameter, it runs the calibration
  procedure first, in this process and on the bench it already holds, into its own
  run file and ledger row, and returns the fresh calibration.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from pathlib import Path
from typing import Any

from labpnn.errors import BadInput, InstrumentError
from labpnn.registry import Calibration


def _station_calibration_config(procedure: Any) -> dict[str, Any]:
    config = getattr(procedure, "station_config", None)
    raw = getattr(config, "raw", None) or {}
    section = raw.get("calibration") or {}
    return section if isinstance(section, dict) else {}


def auto_recalibrate_enabled(procedure: Any) -> bool:
    if bool(getattr(procedure, "auto_recalibrate", False)):
        return True
    return bool(_station_calibration_config(procedure).get("auto_recalibrate", False))


def _fresh(cal: Calibration | None, max_age_s: float | None) -> bool:
    if cal is None:
        return False
    return max_age_s is None or time.time() - cal.created <= max_age_s


def _record(procedure: Any, kind: str, message: str, level: str = "WARNING") -> None:
    procedure.log.log(logging.WARNING if level == "WARNING" else logging.INFO, message)
    ledger = getattr(procedure.registry, "ledger", None)
    run_id = _run_id(procedure)
    if ledger is not None and run_id:
        with contextlib.suppress(Exception):
            ledger.add_event(run_id, kind, message)


def _run_id(procedure: Any) -> str:
    writer = getattr(procedure, "run", None)
    with contextlib.suppress(Exception):
        value = writer.f.attrs["run_id"]
        return value.decode() if isinstance(value, bytes) else str(value)
    return ""


def ensure_calibration(
    procedure: Any,
    kind: str,
    calibrate_procedure: str,
    params: dict[str, Any] | None = None,
    max_age_s: float | None = None,
    auto: bool | None = None,
) -> Calibration:
    """The calibration to use now, recorded in the run file; see the module docstring."""
    cal = _choose_calibration(procedure, kind, calibrate_procedure, params, max_age_s, auto)
    record = getattr(procedure, "record_calibration", None)
    return record(cal) if record is not None else cal


def _choose_calibration(
    procedure: Any,
    kind: str,
    calibrate_procedure: str,
    params: dict[str, Any] | None,
    max_age_s: float | None,
    auto: bool | None,
) -> Calibration:
    registry = procedure.registry
    if max_age_s is None:
        ages = _station_calibration_config(procedure).get("max_age_s") or {}
        max_age_s = ages.get(kind) if isinstance(ages, dict) else None
    cal = registry.latest_valid(kind)
    if _fresh(cal, max_age_s):
        return cal
    newest = registry.latest(kind)
    station = registry.key[0]
    if newest is None:
        problem = f"there is no '{kind}' calibration for station '{station}'"
    elif cal is None:
        problem = f"the newest '{kind}' calibration (id {newest.id}) has expired"
    else:
        problem = (
            f"the newest '{kind}' calibration (id {cal.id}) is {time.time() - cal.created:.0f} s "
            f"old, more than the {max_age_s:g} s allowed"
        )
    if not (auto if auto is not None else auto_recalibrate_enabled(procedure)):
        if newest is None:
            raise BadInput(
                f"{problem}; run `labpnn run {calibrate_procedure} --station {station}` first, "
                f"or set `calibration: {{auto_recalibrate: true}}` in the station config"
            )
        _record(
            procedure,
            "calibration-expired",
            f"{problem}; continuing with it (set calibration.auto_recalibrate in the "
            f"station config to recalibrate automatically)",
        )
        return newest
    _record(
        procedure,
        "auto-recalibrate",
        f"{problem}; running {calibrate_procedure} first",
        level="INFO",
    )
    started = time.time()
    path = run_inline(procedure, calibrate_procedure, params or {})
    fresh = registry.latest(kind)
    if fresh is None or fresh.created < started:
        raise InstrumentError(
            f"{calibrate_procedure} ran ({path}) but saved no '{kind}' calibration to the registry"
        )
    return fresh


def run_inline(parent: Any, name: str, params: dict[str, Any]) -> Path:
    """Run another procedure inside this run, on the same station, into its own file.

    The bench locks stay with the parent; the child's ledger row shares the parent's
    run lock, so if the process dies both rows are marked crashed.
    """
    from labpnn.catalog import procedure_class
    from labpnn.storage import RunWriter

    child = procedure_class(name)()
    for key, value in params.items():
        child.set_parameter(key, value)
    for attr in ("station", "station_config", "registry", "operator"):
        setattr(child, attr, getattr(parent, attr, None))
    child._progress_hook = parent._progress_hook
    child._stop_requested = parent._stop_requested
    ledger = parent.registry.ledger
    parent_id = _run_id(parent)
    parent_row = ledger.run(parent_id) if parent_id else None
    run_id = uuid.uuid4().hex[:12]
    parent_path = Path(parent.run.path)
    path = parent_path.with_name(f"{parent_path.stem}_then-{name}_{run_id[:6]}.h5")
    config = parent.station_config
    attrs = {
        "run_id": run_id,
        "procedure": name,
        "procedure_class": f"{type(child).__module__}.{type(child).__qualname__}",
        "parameters": child.parameter_values(),
        "station": config.name,
        "bench": config.bench.kind,
        "layout_hash": config.bench.layout_hash(),
        "simulated": config.simulated,
        "started_by": f"auto-recalibrate:{parent_id}",
        "parent_run": parent_id,
    }
    writer = RunWriter(path, attrs)
    child.run = writer
    ledger.start_run(
        run_id=run_id,
        procedure=name,
        station=config.name,
        bench=config.bench.kind,
        parameters=child.parameter_values(),
        file=str(path.resolve()),
        started_by=f"auto-recalibrate:{parent_id}",
        lock_path=(parent_row or {}).get("lock_path"),
    )
    status, error = "failed", ""
    try:
        child.validate()
        child.startup()
        try:
            child.execute()
        finally:
            child.shutdown()
        status = "completed"
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        writer.finish(status, error or None)
        ledger.end_run(run_id, status, error or None)
        parent.log.info("%s: %s into %s", name, status, path)
    return path
