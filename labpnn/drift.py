"""Drift from night to night: how much each new calibration differs from the one before.

A bench that drifts slowly needs a calibration a night; one whose drift speeds up
(a warming fibre, a loosening connector) shows it here first. For each bench and
calibration kind the registry keeps the history; this module compares each entry with
the previous one:

* ``tm``: mean over output pixels of the magnitude of the normalised complex inner
  product between tonight's and last night's TM rows. A phase-stepping TM is known
  only up to one phase per output pixel (the reference field), which this ignores.
* ``vna``: the relative change ``|e_now - e_prev| / |e_prev|`` of each error term.
* ``audio``: the latency (samples) and the gain (``gain`` or ``gain_db``) themselves,
  with the latency's change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labpnn.errors import BadInput
from labpnn.ledger import Ledger
from labpnn.registry import Calibration, CalibrationRegistry

KINDS = ("tm", "vna", "audio")


@dataclass
class DriftPoint:
    t: float  # when the newer calibration was taken (epoch s)
    calibration_id: int
    metrics: dict[str, float] = field(default_factory=dict)


def tm_correlation(today: np.ndarray, yesterday: np.ndarray) -> float:
    """Mean |normalised inner product| of matching rows (output pixels), in 0..1."""
    a = np.asarray(today).reshape(len(today), -1)
    b = np.asarray(yesterday).reshape(len(yesterday), -1)
    if a.shape != b.shape:
        raise BadInput(
            f"the TMs have different shapes {a.shape} and {b.shape}; they come from "
            f"different layouts and cannot be compared"
        )
    if not (np.iscomplexobj(a) or np.iscomplexobj(b)):
        a = a - a.mean(axis=1, keepdims=True)
        b = b - b.mean(axis=1, keepdims=True)
    num = np.abs(np.sum(a * np.conj(b), axis=1))
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    ok = den > 0
    return float(np.mean(num[ok] / den[ok])) if ok.any() else float("nan")


def relative_change(now: np.ndarray, before: np.ndarray) -> float:
    now, before = np.asarray(now), np.asarray(before)
    if now.shape != before.shape:
        return float("nan")
    scale = np.linalg.norm(before)
    return float(np.linalg.norm(now - before) / scale) if scale > 0 else float("nan")


def _scalar(cal: Calibration, arrays: dict[str, np.ndarray], *names: str) -> float | None:
    for name in names:
        if name in cal.metrics:
            return float(cal.metrics[name])
        if name in arrays and np.asarray(arrays[name]).size == 1:
            return float(np.asarray(arrays[name]).reshape(()))
    return None


def _arrays(cal: Calibration) -> dict[str, np.ndarray]:
    try:
        return cal.arrays()
    except (OSError, ValueError):
        return {}  # the arrays file was removed: the metrics still tell something


def drift_points(registry: CalibrationRegistry, kind: str) -> list[DriftPoint]:
    """One point per calibration after the first (audio: one per calibration)."""
    history = registry.history(kind)
    points: list[DriftPoint] = []
    earlier: list[tuple[Calibration, dict[str, np.ndarray]]] = []
    for cal in history:
        arrays = _arrays(cal)
        point = DriftPoint(cal.created, cal.id)
        # compared with the newest earlier calibration of the same form: a one-off TM of
        # another mode count or a one-port VNA calibration among two-port ones starts no
        # comparison and breaks none
        previous = next((e for e in reversed(earlier) if _same_form(kind, arrays, e[1])), None)
        if kind == "tm":
            if previous is not None:
                point.metrics["tm_correlation"] = tm_correlation(arrays["tm"], previous[1]["tm"])
        elif kind == "vna":
            if previous is not None:
                for name in sorted(set(arrays) & set(previous[1])):
                    if "freq" in name:
                        continue  # the axis, not an error term
                    point.metrics[name] = relative_change(arrays[name], previous[1][name])
        elif kind == "audio":
            latency = _scalar(cal, arrays, "latency_samples", "latency")
            gain, gain_db = _scalar(cal, arrays, "gain"), _scalar(cal, arrays, "gain_db")
            if latency is not None:
                point.metrics["latency_samples"] = latency
            if gain is not None:
                point.metrics["gain"] = gain
            elif gain_db is not None:
                point.metrics["gain_db"] = gain_db
            if previous is not None:
                before_latency = _scalar(previous[0], previous[1], "latency_samples", "latency")
                if latency is not None and before_latency is not None:
                    point.metrics["latency_change_samples"] = latency - before_latency
        if point.metrics:
            points.append(point)
        earlier.append((cal, arrays))
    return points


def _same_form(kind: str, now: dict[str, np.ndarray], before: dict[str, np.ndarray]) -> bool:
    """Whether two calibrations of ``kind`` measure the same thing (same arrays, shapes)."""
    if kind == "tm":
        return "tm" in now and "tm" in before and np.shape(now["tm"]) == np.shape(before["tm"])
    if kind == "vna":
        return set(now) == set(before) and all(np.shape(now[k]) == np.shape(before[k]) for k in now)
    return True


def registry_for(ledger: Ledger, station: str) -> CalibrationRegistry:
    """The registry of a station by name or file; by the ledger alone if not loadable here."""
    from labpnn.station import StationConfig

    try:
        return CalibrationRegistry.for_config(ledger, StationConfig.load(station))
    except BadInput:
        rows = ledger.db.execute(
            "SELECT station, bench, layout_hash FROM calibrations WHERE station = ? "
            "ORDER BY created DESC LIMIT 1",
            (station,),
        ).fetchall()
        if not rows:
            known = [
                r["station"]
                for r in ledger.db.execute(
                    "SELECT DISTINCT station FROM calibrations ORDER BY station"
                )
            ]
            raise BadInput(
                f"no calibrations recorded for station '{station}' "
                f"(stations with calibrations: {', '.join(known) or 'none'})"
            ) from None
        r = rows[0]
        return CalibrationRegistry(ledger, r["station"], r["bench"], r["layout_hash"])


def drift_report(registry: CalibrationRegistry) -> dict[str, list[DriftPoint]]:
    return {kind: drift_points(registry, kind) for kind in KINDS if registry.history(kind)}


def plot_drift(report: dict[str, list[DriftPoint]], title: str, out: str | Path) -> Path:
    """One panel per calibration kind, calibrations on a date axis."""
    import datetime as dt

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = [k for k in KINDS if report.get(k)]
    if not kinds:
        raise BadInput(
            f"{title}: no drift to plot yet: a series needs calibrations of one kind taken "
            "on different nights (calibrate-tm on an optical bench, calibrate-vna on a "
            "microwave bench, calibrate-audio on an acoustic bench)"
        )
    fig, axes = plt.subplots(len(kinds), 1, figsize=(8, 2.8 * len(kinds) + 0.6), squeeze=False)
    for ax, kind in zip(axes[:, 0], kinds):
        points = report[kind]
        when = [dt.datetime.fromtimestamp(p.t) for p in points]
        if kind == "tm":
            values = [p.metrics.get("tm_correlation", np.nan) for p in points]
            ax.plot(when, values, "o-")
            ax.set_ylabel("TM correlation\nwith previous")
            low = float(np.nanmin(values)) if np.isfinite(values).any() else 0.0
            span = max(1.0 - low, 1e-2)
            ax.set_ylim(low - 0.2 * span, 1.0 + 0.05 * span)
            ax.ticklabel_format(axis="y", useOffset=False)
        elif kind == "vna":
            names = sorted({n for p in points for n in p.metrics})
            for name in names:
                ax.plot(when, [p.metrics.get(name, np.nan) for p in points], "o-", label=name)
            ax.set_ylabel("VNA error term\nrelative change")
            ax.set_yscale("log")
            ax.legend(fontsize=7, loc="best")
        else:
            ax.plot(
                when, [p.metrics.get("latency_samples", np.nan) for p in points], "o-", color="C0"
            )
            ax.set_ylabel("latency (samples)", color="C0")
            key = "gain" if any("gain" in p.metrics for p in points) else "gain_db"
            twin = ax.twinx()
            twin.plot(when, [p.metrics.get(key, np.nan) for p in points], "s--", color="C1")
            twin.set_ylabel("gain" if key == "gain" else "gain (dB)", color="C1")
        ax.set_title(f"{kind} calibration", fontsize=9, loc="left")
        ax.grid(alpha=0.3)
    fig.suptitle(f"night-to-night drift: {title}")
    fig.autofmt_xdate()
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def summary_lines(report: dict[str, list[DriftPoint]]) -> list[str]:
    """The drift table as text, newest last, for the terminal and the morning summary."""
    import datetime as dt

    lines = []
    for kind, points in report.items():
        for p in points:
            when = dt.datetime.fromtimestamp(p.t).strftime("%Y-%m-%d %H:%M")
            values = "  ".join(f"{k}={v:.4g}" for k, v in p.metrics.items())
            lines.append(f"{kind:<6} {when}  {values}")
    return lines


def latest_drift(registry: CalibrationRegistry, kind: str) -> dict[str, Any]:
    """The newest drift metrics of one kind (empty when there is no history yet)."""
    points = drift_points(registry, kind)
    return dict(points[-1].metrics) if points else {}
