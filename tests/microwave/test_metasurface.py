"""The metasurface controller: exact protocol against a fake port, for real over a pty."""

from __future__ import annotations

import numpy as np
import pytest
import serial

from labpnn.drivers.metasurface import MetasurfaceController, bits_to_hex
from labpnn.errors import BadInput, ConfigError, DeviceLost, InstrumentError, InstrumentTimeout


class FakeSerial:
    """A serial port that checks what is written and replays scripted replies."""

    def __init__(self, pairs):
        self.pairs = list(pairs)
        self.pending = b""
        self.closed = False

    def reset_input_buffer(self):
        self.pending = b""

    def write(self, data):
        expected, reply = self.pairs.pop(0)
        assert data == expected.encode() + b"\n", f"sent {data!r}, expected {expected!r}"
        if isinstance(reply, Exception):
            raise reply
        self.pending = b"" if reply is None else reply.encode() + b"\n"
        return len(data)

    def readline(self):
        line, self.pending = self.pending, b""
        return line

    def close(self):
        self.closed = True


def controller(pairs, n_bits=8):
    fake = FakeSerial(pairs)
    return MetasurfaceController(n_bits=n_bits, connection=fake), fake


def test_set_sends_hex_lsb_first_and_expects_ok():
    bits = np.array([1, 0, 0, 0, 0, 0, 0, 1], dtype=bool)  # elements 0 and 7
    ms, fake = controller([("SET 81", "OK"), ("GET?", "81")])
    ms.configuration = bits
    assert np.array_equal(ms.configuration, bits)
    assert not fake.pairs


def test_forty_bits_are_ten_hex_digits():
    bits = np.zeros(40, dtype=bool)
    bits[[0, 4, 39]] = True
    assert bits_to_hex(bits) == "8000000011"


def test_identity_checks_the_element_count():
    ms, _ = controller([("*IDN?", "ACME,MS-40,0042,1.2"), ("NBITS?", "8")])
    assert ms.identity() == {
        "maker": "ACME", "model": "MS-40", "serial": "0042", "firmware": "1.2", "n_bits": "8"
    }  # fmt: skip
    ms, _ = controller([("*IDN?", "ACME,MS-64,0042,1.2"), ("NBITS?", "64")])
    with pytest.raises(
        ConfigError, match="drives 64 elements but the station config says n_bits=8"
    ):
        ms.identity()


def test_safe_state_sets_every_element_off():
    ms, fake = controller([("SET 00", "OK")])
    ms.safe_state()
    assert not fake.pairs


def test_controller_refusal_is_an_instrument_error_quoting_it():
    ms, _ = controller([("SET FF", "ERR element 3 stuck")])
    with pytest.raises(InstrumentError, match="refused 'SET FF': element 3 stuck"):
        ms.configuration = np.ones(8, dtype=bool)


def test_no_reply_is_a_timeout_and_a_vanished_port_is_device_lost():
    ms, _ = controller([("SET 00", None)])
    with pytest.raises(InstrumentTimeout, match="no reply to 'SET 00' within 1 s"):
        ms.configuration = np.zeros(8, dtype=bool)
    ms, _ = controller([("GET?", serial.SerialException("device disconnected"))])
    with pytest.raises(DeviceLost, match="vanished during 'GET\\?'.*USB cable"):
        ms.configuration  # noqa: B018


def test_bad_configurations_are_refused_before_anything_is_sent():
    ms, _ = controller([])
    with pytest.raises(BadInput, match="8 elements"):
        ms.configuration = np.zeros(9, dtype=bool)
    with pytest.raises(BadInput, match="0/1"):
        ms.configuration = np.full(8, 2)


def test_missing_or_wrong_port_is_a_clear_error():
    with pytest.raises(ConfigError, match="no serial port"):
        MetasurfaceController()
    with pytest.raises(DeviceLost, match="cannot open serial port /dev/nonexistent-tty"):
        MetasurfaceController(port="/dev/nonexistent-tty")


def test_over_a_real_pty_the_cavity_follows_the_controller(world, rng):
    ms = MetasurfaceController(port=world.metasurface_port, n_bits=40)
    try:
        bits = rng.integers(0, 2, 40).astype(bool)
        t0 = world.clock.now()
        ms.configuration = bits
        assert np.array_equal(world.bits, bits)
        assert world.clock.now() == pytest.approx(t0 + world.switch_time_s)
        assert np.array_equal(ms.configuration, bits)
        assert ms.configuration_hex == bits_to_hex(bits)
        ms.configuration_hex = "0000000001"
        assert world.bits[0] and world.bits.sum() == 1
        with pytest.raises(InstrumentError, match="wrong length"):
            ms.set_hex("123")
        assert ms.identity()["n_bits"] == "40"
    finally:
        ms.close()


def test_pty_hang_is_a_timeout(world):
    ms = MetasurfaceController(port=world.metasurface_port, timeout_s=0.2)
    try:
        world.inject_fault("metasurface_hang")
        with pytest.raises(InstrumentTimeout, match="within 0.2 s"):
            ms.configuration = np.ones(40, dtype=bool)
    finally:
        ms.close()


def test_device_vanishing_mid_run_gives_a_clear_error_and_a_safe_state(connect_station, rng):
    from labpnn.bench import make_bench

    station = connect_station("bench.simulation.faults.metasurface_vanish_after_sets=3")
    bench = make_bench(station)
    with pytest.raises(DeviceLost, match="metasurface controller on /dev/.* vanished"):
        bench(rng.random((5, 20)))
    assert bench.queries == 0  # the failed batch is not counted
    result = station.safe_state()
    assert result["vna"] == "ok"
    assert result["metasurface"].startswith("failed: DeviceLost")
    assert station.world.vna.state.rf_on is False
