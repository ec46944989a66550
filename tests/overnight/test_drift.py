"""Calibration history with validity windows, and night-to-night drift."""

from __future__ import annotations

import time

import numpy as np
import pytest
from click.testing import CliRunner

from labpnn.drift import drift_points, relative_change, tm_correlation
from labpnn.overnight_cli import cli
from labpnn.registry import CalibrationRegistry
from labpnn.station import StationConfig

DAY = 86400.0


@pytest.fixture
def registry(ledger, bench):
    return CalibrationRegistry.for_config(ledger, StationConfig.load(bench()))


def test_latest_valid_follows_the_validity_windows(registry):
    now = time.time()
    old = registry.save("tm", {"tm": np.eye(2)}, valid_for_s=DAY, created=now - 3 * DAY)
    assert registry.latest_valid("tm") is None  # expired two days ago
    assert registry.latest("tm").id == old
    assert registry.latest_valid("tm", at=now - 2.5 * DAY).id == old
    new = registry.save("tm", {"tm": np.eye(2)}, valid_for_s=DAY, created=now - 60)
    assert registry.latest_valid("tm").id == new
    registry.expire(new)  # a validation run rejected it
    assert registry.latest_valid("tm") is None
    assert registry.kinds() == ["tm"]


def test_a_calibration_never_satisfies_another_layout(ledger, bench, registry):
    registry.save("tm", {"tm": np.eye(2)})
    other = CalibrationRegistry.for_config(ledger, StationConfig.load(bench("night-optical-2")))
    assert other.latest_valid("tm") is None


def test_tm_correlation_ignores_one_phase_per_output_pixel():
    rng = np.random.default_rng(0)
    tm = rng.normal(size=(8, 32)) + 1j * rng.normal(size=(8, 32))
    phases = np.exp(1j * rng.uniform(0, 2 * np.pi, size=(8, 1)))
    assert tm_correlation(tm * phases, tm) == pytest.approx(1.0)
    noisy = tm + 1.0 * (rng.normal(size=tm.shape) + 1j * rng.normal(size=tm.shape))
    assert 0.5 < tm_correlation(noisy, tm) < 0.85  # about 1/sqrt(2) for equal noise
    assert relative_change(np.array([1.1, 2.2]), np.array([1.0, 2.0])) == pytest.approx(0.1)


def test_drift_metrics_of_every_kind_night_by_night(ledger, bench):
    now = time.time()
    optical = CalibrationRegistry.for_config(ledger, StationConfig.load(bench("o", "optical")))
    mw = CalibrationRegistry.for_config(ledger, StationConfig.load(bench("m", "microwave")))
    audio = CalibrationRegistry.for_config(ledger, StationConfig.load(bench("a", "acoustic")))
    rng = np.random.default_rng(1)
    tm = rng.normal(size=(8, 16)) + 1j * rng.normal(size=(8, 16))
    e = rng.normal(size=5) + 1j * rng.normal(size=5)
    for night in range(4):
        t = now - (4 - night) * DAY
        noise = rng.normal(size=tm.shape) + 1j * rng.normal(size=tm.shape)
        optical.save("tm", {"tm": tm + 0.1 * (night + 1) * noise}, created=t)
        mw.save(
            "vna", {"directivity": e * (1 + 0.01 * night), "frequency_hz": np.arange(5)}, created=t
        )
        audio.save("audio", {}, {"latency_samples": 480 + night, "gain": 0.9}, created=t)
    tm_points = drift_points(optical, "tm")
    corr = [p.metrics["tm_correlation"] for p in tm_points]
    assert len(corr) == 3 and all(0.8 < c < 1 for c in corr)
    assert corr[0] > corr[-1]  # the fibre drifts faster night after night
    vna = drift_points(mw, "vna")
    assert set(vna[-1].metrics) == {"directivity"}  # the frequency axis is not an error term
    assert vna[-1].metrics["directivity"] == pytest.approx(0.01 / 1.02, rel=1e-6)
    au = drift_points(audio, "audio")
    assert [p.metrics["latency_samples"] for p in au] == [480, 481, 482, 483]
    assert au[-1].metrics["latency_change_samples"] == 1


def test_a_one_off_calibration_of_another_form_breaks_no_series(registry, ledger, bench):
    now = time.time()
    rng = np.random.default_rng(2)
    tm = rng.normal(size=(8, 16)) + 1j * rng.normal(size=(8, 16))
    registry.save("tm", {"tm": tm}, created=now - 3 * DAY)
    registry.save("tm", {"tm": tm[:, :4]}, created=now - 2 * DAY)  # n_modes=4 that night
    registry.save("tm", {"tm": tm}, created=now - DAY)
    (point,) = drift_points(registry, "tm")  # compared with the 16-mode TM two nights before
    assert point.metrics["tm_correlation"] == pytest.approx(1.0)
    mw = CalibrationRegistry.for_config(ledger, StationConfig.load(bench("m2", "microwave")))
    two_port = {"directivity": np.ones(5), "load_match": np.ones(5)}
    mw.save("vna", two_port, created=now - 3 * DAY)
    mw.save("vna", {"directivity": np.ones(5)}, created=now - 2 * DAY)  # one-port
    mw.save("vna", {k: 1.1 * v for k, v in two_port.items()}, created=now - DAY)
    (point,) = drift_points(mw, "vna")
    assert point.metrics["load_match"] == pytest.approx(0.1)


def test_drift_command_prints_the_table_and_writes_the_png(ledger, bench, tmp_path):
    station = bench("night-optical", "optical")
    reg = CalibrationRegistry.for_config(ledger, StationConfig.load(station))
    rng = np.random.default_rng(2)
    tm = rng.normal(size=(8, 16)) + 1j * rng.normal(size=(8, 16))
    for night in range(5):
        reg.save(
            "tm",
            {"tm": tm + 0.05 * night * rng.normal(size=tm.shape)},
            created=time.time() - (5 - night) * DAY,
        )
    out = tmp_path / "drift.png"
    res = CliRunner().invoke(cli, ["drift", str(station), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert res.output.count("tm_correlation=") == 4
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # by name only, with the station file gone (the ledger alone knows the station)
    station.unlink()
    res = CliRunner().invoke(cli, ["drift", "night-optical", "-o", str(out)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["drift", "nowhere"])
    assert res.exit_code == 2 and "no calibrations recorded for station 'nowhere'" in res.output
