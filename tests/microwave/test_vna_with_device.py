"""Checks against a real VNA and metasurface controller; skipped unless an address is given.

    LABPNN_TEST_VNA_ADDRESS="TCPIP::192.168.1.5::5025::SOCKET" \\
    LABPNN_TEST_VNA_DRIVER=labpnn.drivers.vna.KeysightENA pytest tests/microwave/test_vna_with_device.py
    LABPNN_TEST_METASURFACE_PORT=/dev/ttyUSB0 LABPNN_TEST_METASURFACE_BITS=40 pytest ...

Low power (-20 dBm) and RF off at the end; connect a load or the antennas, nothing fragile.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from labpnn.station import resolve_driver

VNA_ADDRESS = os.environ.get("LABPNN_TEST_VNA_ADDRESS")
METASURFACE_PORT = os.environ.get("LABPNN_TEST_METASURFACE_PORT")


@pytest.mark.skipif(not VNA_ADDRESS, reason="set LABPNN_TEST_VNA_ADDRESS to test a real VNA")
def test_real_vna_sweeps_reads_errors_and_switches_rf_off():
    cls = resolve_driver(os.environ.get("LABPNN_TEST_VNA_DRIVER", "labpnn.drivers.vna.KeysightENA"))
    vna = cls(address=VNA_ADDRESS, limits={"power_dbm": [-40, -10]})
    try:
        print(vna.identity())
        vna.configure(1e9, 2e9, 201, 1e3, -20)
        vna.define_traces(["S11", "S21"])
        vna.rf_on = True
        net = vna.sweep()
        assert net.s.shape == (201, 2, 2) and np.isfinite(net.s[:, 1, 0]).all()
        assert np.allclose(net.f, np.linspace(1e9, 2e9, 201))
        vna.write("SENS1:NOSUCH:COMMAND 1")
        with pytest.raises(Exception, match="-1"):
            vna.raise_errors("an undefined header sent on purpose")
    finally:
        vna.safe_state()
        assert vna.rf_on is False
        vna.close()


@pytest.mark.skipif(not METASURFACE_PORT, reason="set LABPNN_TEST_METASURFACE_PORT")
def test_real_metasurface_round_trips_a_configuration():
    from labpnn.drivers.metasurface import MetasurfaceController

    n_bits = int(os.environ.get("LABPNN_TEST_METASURFACE_BITS", "40"))
    ms = MetasurfaceController(port=METASURFACE_PORT, n_bits=n_bits)
    try:
        print(ms.identity())
        bits = np.random.default_rng(0).integers(0, 2, n_bits).astype(bool)
        ms.configuration = bits
        assert np.array_equal(ms.configuration, bits)
    finally:
        ms.safe_state()
        ms.close()
