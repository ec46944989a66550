"""The calibration registry: the latest valid calibration for a bench, and its history.

Keyed by station, bench kind and a hash of the bench's ``layout`` (and, for a simulated
station, a "simulated" marker and its world's settings: ``StationConfig.calibration_hash``),
so a calibration taken on a simulated bench, on another simulated world or on a differently
wired bench can never satisfy another.
It stores the key arrays (``.npz`` in the state directory, loaded without pickle) and
a reference to the run file that produced them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labpnn import paths
from labpnn.errors import BadCalibration, BadInput
from labpnn.ledger import Ledger


@dataclass
class Calibration:
    id: int
    kind: str
    created: float
    valid_until: float | None
    run_file: str
    metrics: dict[str, Any]
    arrays_path: str

    @property
    def expired(self) -> bool:
        return self.valid_until is not None and time.time() > self.valid_until

    def valid_at(self, t: float) -> bool:
        """Whether ``t`` lies in this calibration's validity window [created, valid_until]."""
        return self.created <= t and (self.valid_until is None or t <= self.valid_until)

    @property
    def age_s(self) -> float:
        return time.time() - self.created

    def arrays(self) -> dict[str, np.ndarray]:
        with np.load(self.arrays_path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def provenance(self, ledger: Ledger | None = None, at: float | None = None) -> dict[str, Any]:
        """What a run that uses this calibration records about it (``/calibrations_used``).

        The registry id is local to one state directory, so the producing run's file and
        run id go with it: with those, a reader months later finds the arrays and the
        conditions they were measured under.
        """
        from labpnn.storage import iso_time

        at = time.time() if at is None else at
        row = None
        if ledger is not None and self.run_file:
            try:
                row = ledger.run_for_file(self.run_file)
            except Exception:  # a moved file or a damaged ledger: the path still says it
                row = None
        return {
            "registry_id": self.id,
            "kind": self.kind,
            "created": iso_time(self.created),
            "valid_until": "" if self.valid_until is None else iso_time(self.valid_until),
            "valid_when_used": self.valid_at(at),
            "age_when_used_s": at - self.created,
            "run_file": self.run_file,
            "run_id": row["run_id"] if row else "",
            "metrics": json.dumps(self.metrics, default=float),
        }


class CalibrationRegistry:
    def __init__(self, ledger: Ledger, station: str, bench: str, layout_hash: str):
        self.ledger = ledger
        self.key = (station, bench, layout_hash)

    @classmethod
    def for_station(cls, ledger: Ledger, station: Any) -> CalibrationRegistry:
        return cls(ledger, station.name, station.bench.kind, station.config.calibration_hash())

    @classmethod
    def for_config(cls, ledger: Ledger, config: Any) -> CalibrationRegistry:
        """The registry of a station config, without connecting its instruments."""
        return cls(ledger, config.name, config.bench.kind, config.calibration_hash())

    def save(
        self,
        kind: str,
        arrays: dict[str, np.ndarray],
        metrics: dict[str, Any] | None = None,
        run_file: str | Path = "",
        valid_for_s: float | None = None,
        created: float | None = None,
    ) -> int:
        for name, array in arrays.items():
            array = np.asarray(array)
            if array.dtype.kind in "fc" and not np.isfinite(array).all():
                bad = int(np.count_nonzero(~np.isfinite(array)))
                # Later runs would drive the hardware with it (NaN phases on the SLM).
                raise BadCalibration(
                    f"the {kind} calibration was not registered: {bad} of {array.size} values "
                    f"of '{name}' are NaN or Inf (the instrument returned bad data during the "
                    "measurement; check it and calibrate again). The run file keeps what was "
                    "measured."
                )
        folder = paths.state_dir() / "calibrations"
        folder.mkdir(parents=True, exist_ok=True)
        created = time.time() if created is None else float(created)
        target = folder / f"{self.key[0]}-{kind}-{int(created * 1000)}.npz"
        np.savez(target, **{k: np.asarray(v) for k, v in arrays.items()})
        with self.ledger.transaction() as db:
            cur = db.execute(
                "INSERT INTO calibrations (station, bench, layout_hash, kind, created, "
                "valid_until, run_file, arrays_path, metrics) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    *self.key,
                    kind,
                    created,
                    None if valid_for_s is None else created + valid_for_s,
                    str(run_file),
                    str(target),
                    json.dumps(metrics or {}, default=float),
                ),
            )
            return int(cur.lastrowid)

    def history(self, kind: str) -> list[Calibration]:
        rows = self.ledger.db.execute(
            "SELECT * FROM calibrations WHERE station=? AND bench=? AND layout_hash=? AND kind=? "
            "ORDER BY created",
            (*self.key, kind),
        )
        return [
            Calibration(
                id=r["id"],
                kind=r["kind"],
                created=r["created"],
                valid_until=r["valid_until"],
                run_file=r["run_file"],
                metrics=json.loads(r["metrics"] or "{}"),
                arrays_path=r["arrays_path"],
            )
            for r in rows
        ]

    def latest(self, kind: str, valid_only: bool = False) -> Calibration | None:
        for cal in reversed(self.history(kind)):
            if not valid_only or not cal.expired:
                return cal
        return None

    def latest_valid(self, kind: str, at: float | None = None) -> Calibration | None:
        """The newest calibration whose validity window contains ``at`` (default: now)."""
        at = time.time() if at is None else at
        for cal in reversed(self.history(kind)):
            if cal.valid_at(at):
                return cal
        return None

    def expire(self, cal_id: int, at: float | None = None) -> None:
        """Close a calibration's validity window, e.g. when a validation run rejects it."""
        with self.ledger.transaction() as db:
            db.execute(
                "UPDATE calibrations SET valid_until = ? WHERE id = ?",
                (time.time() if at is None else at, cal_id),
            )

    def kinds(self) -> list[str]:
        rows = self.ledger.db.execute(
            "SELECT DISTINCT kind FROM calibrations WHERE station=? AND bench=? AND layout_hash=? "
            "ORDER BY kind",
            self.key,
        )
        return [r["kind"] for r in rows]

    def require(self, kind: str, procedure_hint: str) -> Calibration:
        cal = self.latest(kind)
        if cal is None:
            raise BadInput(
                f"no '{kind}' calibration for station '{self.key[0]}' with this bench layout; "
                f"run `labpnn run {procedure_hint} --station {self.key[0]}` first"
            )
        return cal
