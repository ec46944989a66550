"""A procedure started with an expired calibration warns, or recalibrates first."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from labpnn.ledger import Ledger
from labpnn.registry import CalibrationRegistry
from labpnn.station import StationConfig
from labpnn.storage import read_run
from tests.conftest import run_labpnn


def _expired_tm(station) -> int:
    ledger = Ledger()
    try:
        reg = CalibrationRegistry.for_config(ledger, StationConfig.load(station))
        return reg.save("tm", {"tm": np.eye(4)}, valid_for_s=86400, created=time.time() - 2 * 86400)
    finally:
        ledger.close()


def _run(station, *sets):
    args = ["run", "needs-tm", "--station", str(station), "--no-progress"]
    for s in sets:
        args += ["--set", s]
    res = run_labpnn(*args)
    return res, (res.stdout.strip().splitlines() or [""])[-1]


def test_without_any_calibration_the_run_says_which_procedure_to_run(bench):
    res, path = _run(bench())
    assert res.returncode == 1
    assert (
        "there is no 'tm' calibration for station 'night-optical'; run `labpnn run "
        "night-measure --station night-optical` first" in res.stderr
    )


def test_an_expired_calibration_is_used_with_a_warning_in_file_and_ledger(bench):
    station = bench()
    old = _expired_tm(station)
    res, path = _run(station)
    assert res.returncode == 0, res.stderr
    info = read_run(path)
    assert info["summary"]["calibration_id"] == old
    assert any("has expired; continuing with it" in m for _, _, m in info["log"])
    ledger = Ledger()
    (event,) = ledger.events(ledger.run_for_file(path)["run_id"])
    assert event["kind"] == "calibration-expired"


def test_auto_recalibrate_in_the_station_config_runs_the_calibration_first(bench):
    station = bench(calibration={"auto_recalibrate": True})
    old = _expired_tm(station)
    res, path = _run(station)
    assert res.returncode == 0, res.stderr
    info = read_run(path)
    assert info["summary"]["calibration_id"] > old
    ledger = Ledger()
    parent = ledger.run_for_file(path)
    (child,) = ledger.runs_started_by(f"auto-recalibrate:{parent['run_id']}")
    assert child["procedure"] == "night-measure" and child["status"] == "completed"
    assert read_run(child["file"])["status"] == "completed"
    assert [e["kind"] for e in ledger.events(parent["run_id"])] == ["auto-recalibrate"]


def test_the_procedure_flag_also_asks_for_recalibration(bench):
    station = bench()
    _expired_tm(station)
    res, path = _run(station, "auto_recalibrate=true")
    assert res.returncode == 0, res.stderr
    assert list(Path(path).parent.glob("*_then-night-measure_*.h5"))
