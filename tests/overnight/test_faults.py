"""Fault survival: bounded, recorded retries; saturation; watchdog; safe-off afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from labpnn.errors import InstrumentError, InstrumentTimeout, LimitError
from labpnn.faults import CameraSaturated, grab_unsaturated, with_retries
from labpnn.ledger import Ledger
from labpnn.storage import RunWriter, read_run


class _Registry:
    def __init__(self, ledger):
        self.ledger = ledger


class _Procedure:
    """Just what the retry helpers use of a running procedure."""

    def __init__(self, tmp_path, ledger):
        self.run = RunWriter(tmp_path / "run.h5", {"run_id": "r1"})
        self.registry = _Registry(ledger)
        self.station = None
        ledger.start_run(run_id="r1", procedure="p", status="running")


@pytest.fixture
def procedure(tmp_path, ledger):
    proc = _Procedure(tmp_path, ledger)
    yield proc
    proc.run.close()


def test_a_transient_timeout_is_retried_and_each_retry_recorded(procedure, ledger):
    calls = []

    def read():
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise InstrumentTimeout("camera: no frame within 1 s")
        return 42

    reconnects = []
    assert (
        with_retries(
            read,
            procedure=procedure,
            what="grab",
            recover=lambda: reconnects.append(1),
            delay_s=0.01,
        )
        == 42
    )
    assert len(calls) == 3 and len(reconnects) == 2
    assert [e["detail"].split(":")[0] for e in ledger.events("r1")] == [
        "retry 1/3 of grab",
        "retry 2/3 of grab",
    ]
    procedure.run.finish("completed")
    info = read_run(procedure.run.path)
    assert info["summary"]["retries"] == 2


def test_retries_are_bounded_and_the_last_error_says_so(procedure):
    def dead():
        raise InstrumentTimeout("vna: no reply to *OPC?")

    with pytest.raises(InstrumentTimeout) as info:
        with_retries(dead, procedure=procedure, what="sweep", max_retries=2, delay_s=0.0)
    assert "gave up on sweep after 2 retries" in info.value.__notes__[0]


def test_an_unrecoverable_error_is_not_retried(procedure):
    calls = []

    def broken():
        calls.append(1)
        raise InstrumentError("error -222, data out of range")

    with pytest.raises(InstrumentError):
        with_retries(broken, procedure=procedure, delay_s=0.0)
    assert calls == [1]


class _SaturatingCamera:
    """Saturates above 2 ms exposure; the lab limit stops at 0.5 ms."""

    def __init__(self, lowest_s=5e-4):
        self.lowest_s = lowest_s
        self._exposure_s = 0.01

    @property
    def exposure_s(self):
        return self._exposure_s

    @exposure_s.setter
    def exposure_s(self, value):
        if value < self.lowest_s:
            raise LimitError(f"camera: exposure_s={value:g} s is outside the lab limit")
        self._exposure_s = value

    def effective_range(self, name):
        return (self.lowest_s, 1.0)

    def grab(self):
        level = min(4095, int(4095 * self._exposure_s / 2e-3))
        return np.full((8, 8), level, dtype=np.uint16)


def test_camera_saturation_shortens_the_exposure_and_retries(procedure, ledger):
    camera = _SaturatingCamera()
    frame = grab_unsaturated(camera, procedure=procedure, full_scale=4095)
    assert frame.max() < 4095
    assert camera.exposure_s == pytest.approx(0.01 / 8)  # 10 -> 5 -> 2.5 -> 1.25 ms
    assert len([e for e in ledger.events("r1") if e["kind"] == "retry"]) == 3


def test_saturation_at_the_shortest_allowed_exposure_is_unrecoverable(procedure):
    camera = _SaturatingCamera(lowest_s=4e-3)
    with pytest.raises(CameraSaturated, match="even at the shortest allowed exposure_s=0.004"):
        grab_unsaturated(camera, procedure=procedure, full_scale=4095)


def test_the_watchdog_fails_a_run_whose_simulated_vna_hangs(lab_dirs):
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "labpnn.cli",
            "run",
            "vna-sweeps",
            "--station",
            "microwave-sim",
            "--set",
            "sweeps=20",
            "--station-set",
            "bench.simulation.faults.vna_hang_after_sweeps=2",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 1, res.stderr
    path = res.stdout.strip().splitlines()[-1]
    row = Ledger().run_for_file(path)
    assert row["status"] == "failed" and row["error"].startswith("watchdog: no progress for 1 s")
    info = read_run(path)
    assert info["status"] == "failed"
    # the hung VNA cannot confirm RF off, so the file must not claim the bench is safe
    assert "did not confirm" in info["safe_state"]["vna"]
    assert info["safe_state"]["all_safe"] is False


@pytest.fixture
def mock_vna_and_metasurface():
    """The standalone mock VNA server and pty metasurface: instruments that outlive runs."""
    from labpnn.mock_instruments.vna_server import serve_vna

    lines, stop = [], threading.Event()
    thread = threading.Thread(
        target=serve_vna,
        daemon=True,
        kwargs=dict(port=0, metasurface=True, stop=stop, announce=lines.append),
    )
    thread.start()
    deadline = time.monotonic() + 20
    while len(lines) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    addresses = {line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in lines[:2]}
    yield addresses["mock VNA listening"], addresses["mock metasurface controller"]
    stop.set()
    thread.join(timeout=10)


def _safe_off(station) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "labpnn.cli", "safe-off", "--station", str(station)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _microwave_station(path, vna_address, port, metasurface_first=False):
    """A real-driver microwave station file pointing at ``vna_address`` and serial ``port``."""
    vna = {"driver": "labpnn.drivers.vna.KeysightENA", "address": vna_address, "timeout_s": 5}
    surface = {
        "driver": "labpnn.drivers.metasurface.MetasurfaceController",
        "port": port,
        "n_bits": 40,
        "timeout_s": 1,
    }
    roles = [("metasurface", surface), ("vna", vna)]
    instruments = dict(roles if metasurface_first else roles[::-1])
    path.write_text(
        json.dumps({"name": path.stem, "instruments": instruments, "bench": {"kind": "microwave"}})
    )
    return path


def test_safe_off_switches_rf_off_and_clears_the_metasurface_even_after_an_error(
    mock_vna_and_metasurface, tmp_path
):
    import pyvisa
    import serial

    vna_address, pty = mock_vna_and_metasurface
    station = _microwave_station(tmp_path / "mw-standalone.yaml", vna_address, pty)
    vna = pyvisa.ResourceManager("@py").open_resource(
        vna_address, read_termination="\n", write_termination="\n"
    )
    surface = serial.Serial(pty, 115200, timeout=2)
    try:
        vna.write("OUTP ON")
        assert vna.query("OUTP?").strip() == "1"
        vna.write("SENS:FREQ:STAR -5")  # the instrument raised an error a moment before
        surface.write(b"SET FFFFFFFFFF\n")
        assert surface.readline().strip() == b"OK"
        res = _safe_off(station)
        assert res.returncode == 0, res.stderr
        assert "vna: ok" in res.stdout and "metasurface: ok" in res.stdout
        assert vna.query("OUTP?").strip() == "0"  # RF off, read back after the process ended
        surface.write(b"GET?\n")
        assert surface.readline().strip() == b"0000000000"
    finally:
        vna.close()
        surface.close()


def test_safe_off_still_switches_rf_off_when_another_instrument_is_unplugged(
    mock_vna_and_metasurface, tmp_path
):
    import pyvisa

    vna_address, _ = mock_vna_and_metasurface
    # the metasurface is opened first and fails: that must not stop the VNA's safe state
    station = _microwave_station(
        tmp_path / "mw-unplugged.yaml", vna_address, str(tmp_path / "ttyUSB-unplugged"),
        metasurface_first=True,
    )  # fmt: skip
    vna = pyvisa.ResourceManager("@py").open_resource(
        vna_address, read_termination="\n", write_termination="\n"
    )
    try:
        vna.write("OUTP ON")
        res = _safe_off(station)
        assert res.returncode == 1, res.stdout + res.stderr
        assert "vna: ok" in res.stdout
        assert "metasurface: NOT REACHED, check it by hand" in res.stdout
        assert "ttyUSB-unplugged" in res.stdout
        assert vna.query("OUTP?").strip() == "0"
    finally:
        vna.close()


def test_safe_off_works_on_instruments_whose_state_outlives_the_run(bench):
    station = bench()
    state = Path(station).parent / "night-optical.probe.state.json"
    state.write_text('{"output": true}')
    res = _safe_off(station)
    assert res.returncode == 0, res.stderr
    assert json.loads(state.read_text()) == {"output": False}
