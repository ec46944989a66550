"""Reading run files from the GUI without ever disturbing the run that writes them.

A reader that holds an HDF5 file open with the library's default file locking makes the
writer's next structural change (first frame of a new stream, a checkpoint, the end
record) fail with "unable to lock file", which kills the run. We measured it: a reader
polling every 20 ms broke the writer in 2 of 2 trials; with ``locking=False`` it broke
it in 0 of 3. So every GUI read goes through :func:`labpnn.storage.open_run`
(``swmr=True, locking=False``), briefly, and tolerates a failed read (the next timer
tick retries).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labpnn.storage import attr_value, open_run, stream_names


def attr(value: Any) -> Any:
    """:func:`labpnn.storage.attr_value`, with arrays as lists (for tables and JSON views)."""
    value = attr_value(value)
    return value.tolist() if isinstance(value, np.ndarray) else value


def read_columns(f: Any, since: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """The 1-D ``/results`` columns; only rows after ``since[name]`` when given."""
    out = {}
    if "results" not in f:
        return out
    for name, ds in f["results"].items():
        if not hasattr(ds, "shape") or len(ds.shape) != 1:
            continue
        if hasattr(ds, "refresh"):
            ds.refresh()
        start = (since or {}).get(name, 0)
        if ds.dtype.kind in "biuf":
            out[name] = ds[start:].astype(float)
    return out


def read_column_units(f: Any, known: dict[str, str] | None = None) -> dict[str, str]:
    """``{column: units}`` of the ``/results`` columns that declare them (``describe``).

    Names already in ``known`` are not read again: a column's units never change.
    """
    out = dict(known or {})
    if "results" not in f:
        return out
    for name, ds in f["results"].items():
        if name not in out and "units" in ds.attrs:
            out[name] = str(attr_value(ds.attrs["units"]))
    return out


@dataclass
class RunInfo:
    """What the browser shows of one run file."""

    path: Path
    attrs: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    safe_state: dict[str, Any] = field(default_factory=dict)
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)  # of the columns that declare them
    frames: dict[str, tuple[int, ...]] = field(default_factory=dict)
    traces: dict[str, tuple[int, ...]] = field(default_factory=dict)
    log: list[tuple[float, str, str]] = field(default_factory=list)
    error: str = ""
    ledger_status: str = ""

    @property
    def status(self) -> str:
        return self.ledger_status or str(self.attrs.get("status", "?"))

    @property
    def procedure(self) -> str:
        return str(self.attrs.get("procedure", "?"))

    @property
    def station(self) -> str:
        return str(self.attrs.get("station", "?"))

    @property
    def start_time(self) -> str:
        return str(self.attrs.get("start_time", ""))

    @property
    def parameters(self) -> dict[str, Any]:
        params = self.attrs.get("parameters")
        return params if isinstance(params, dict) else {}


# A read that meets a file mid-restructure fails (its writer closes and reopens it for a new
# stream, a checkpoint, the end record: milliseconds). Without a retry, about 8 % of reads of a
# busy live file under load failed, and the run browser listed the run as "unreadable" until
# the next refresh. A failing read is retried this many times, this far apart.
READ_ATTEMPTS = 3
READ_RETRY_S = 0.05


def read_info(path: str | os.PathLike, columns: bool = True, log: bool = True) -> RunInfo:
    """Attributes, summary, safe state and (optionally) columns and log of a run file."""
    for attempt in range(READ_ATTEMPTS):
        info = _read_info_once(path, columns, log)
        if not info.error or not os.path.exists(path) or attempt + 1 == READ_ATTEMPTS:
            return info
        time.sleep(READ_RETRY_S)
    raise AssertionError("unreachable")


def _read_info_once(path: str | os.PathLike, columns: bool, log: bool) -> RunInfo:
    info = RunInfo(Path(path))
    try:
        with open_run(path) as f:
            skip = {"station_snapshot", "versions", "identities"}
            info.attrs = {k: attr(v) for k, v in f.attrs.items() if k not in skip}
            if "summary" in f:
                info.summary = {k: attr(v) for k, v in f["summary"].attrs.items()}
            if "safe_state" in f:
                info.safe_state = {k: attr(v) for k, v in f["safe_state"].attrs.items()}
            for group, target in (("frames", info.frames), ("traces", info.traces)):
                if group in f:
                    for name in stream_names(f[group]):
                        target[name] = tuple(f[group][name].shape)
            if columns:
                info.columns = read_columns(f)
                info.units = read_column_units(f)
            if log and "log" in f:
                rows = f["log"][-500:]
                info.log = [
                    (float(r["t"]), r["level"].decode(), r["message"].decode("utf-8", "replace"))
                    for r in rows
                ]
    except Exception as exc:  # an unreadable file is shown as such, never raised
        info.error = f"cannot read {Path(path).name}: {exc}"
    return info


def read_snapshot(path: str | os.PathLike) -> dict[str, Any]:
    try:
        with open_run(path) as f:
            snap = attr(f.attrs.get("station_snapshot", "{}"))
            return snap if isinstance(snap, dict) else {}
    except Exception:
        return {}


def read_frame(path: str | os.PathLike, name: str, index: int = -1) -> np.ndarray | None:
    try:
        with open_run(path) as f:
            ds = f["frames"][name]
            if ds.shape[0] == 0:
                return None
            return ds[index]
    except Exception:
        return None


def find_run_files(data_dir: str | os.PathLike, limit: int = 1000) -> list[Path]:
    """Run files under ``data_dir`` (recursive), newest first."""
    root = Path(data_dir)
    if not root.is_dir():
        return []
    files = []
    for p in root.rglob("*.h5"):
        if p.name.endswith(".repair.h5"):
            continue
        try:
            files.append((p.stat().st_mtime, p))
        except OSError:
            continue
    files.sort(reverse=True)
    return [p for _, p in files[:limit]]


def ledger_statuses() -> dict[str, dict[str, Any]]:
    """Ledger rows by resolved file path (the ledger is the authority on status)."""
    try:
        from labpnn.ledger import Ledger

        ledger = Ledger()
        try:
            return {row["file"]: row for row in ledger.runs(limit=5000) if row.get("file")}
        finally:
            ledger.close()
    except Exception:
        return {}


def headline(summary: dict[str, Any]) -> str:
    """The one metric a person looks for first, formatted."""
    for key in (
        "pearson",
        "enhancement_ratio",
        "fidelity",
        "test_accuracy",
        "max_error",
        "latency_samples",
    ):
        if key in summary:
            value = summary[key]
            return f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
    for key, value in summary.items():
        if isinstance(value, (int, float)):
            return f"{key} {value:.4g}"
    return ""
