"""Every VNA driver command, per family, checked string by string (pymeasure expected_protocol).

The expected strings are spelled out here, not generated from the dialect table, so a typo
in the table fails a test.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from pymeasure.test import expected_protocol

from labpnn.drivers.vna import CopperMountainVNA, KeysightENA, KeysightPNA, RohdeSchwarzZNB
from labpnn.errors import BadInput, ConfigError, InstrumentError, LimitError

OK = '+0,"No error"'
DATA = np.array([0.1, -0.2, 0.3, 0.4, -0.5, 0.6])  # three complex points
BLOCK = b"#248" + DATA.astype("<f8").tobytes()


def select_then_read(selects, data_cmd):
    """Keysight style: select each trace in turn, then read the selected one."""
    return [pair for select in selects for pair in ((select, None), (data_cmd, "block"))]


FAMILIES = {
    "keysight": dict(
        cls=KeysightENA,
        setup=["FORM:BORD SWAP", "FORM:DATA REAL,64", "TRIG:SOUR BUS"],
        ascii_setup=["FORM:BORD SWAP", "FORM:DATA ASCII,0", "TRIG:SOUR BUS"],
        ifbw="SENS1:BWID",
        traces=["CALC1:PAR:COUN 2", "CALC1:PAR1:DEF S11", "CALC1:PAR2:DEF S21"],
        trigger="TRIG:SING",
        read=select_then_read(["CALC1:PAR1:SEL", "CALC1:PAR2:SEL"], "CALC1:DATA:SDAT?"),
        data_cmd="CALC1:DATA:SDAT?",
    ),
    "pna": dict(
        cls=KeysightPNA,
        setup=["FORM:BORD SWAP", "FORM:DATA REAL,64", "TRIG:SOUR IMM", "SENS1:SWE:MODE HOLD"],
        ascii_setup=["FORM:BORD SWAP", "FORM:DATA ASCII,0", "TRIG:SOUR IMM", "SENS1:SWE:MODE HOLD"],
        ifbw="SENS1:BWID",
        traces=[
            "CALC:PAR:DEL:ALL",
            "CALC1:PAR:DEF:EXT 'CH1_S11','S11'",
            "CALC1:PAR:DEF:EXT 'CH1_S21','S21'",
        ],
        trigger="SENS1:SWE:MODE SING",
        read=select_then_read(
            ["CALC1:PAR:SEL 'CH1_S11'", "CALC1:PAR:SEL 'CH1_S21'"], "CALC1:DATA? SDATA"
        ),
        data_cmd="CALC1:DATA? SDATA",
    ),
    "rohde": dict(
        cls=RohdeSchwarzZNB,
        setup=["FORM:BORD SWAP", "FORM REAL,64", "INIT1:CONT OFF"],
        ascii_setup=["FORM:BORD SWAP", "FORM ASC,0", "INIT1:CONT OFF"],
        ifbw="SENS1:BAND",
        traces=["CALC1:PAR:DEL:ALL", "CALC1:PAR:SDEF 'Trc1','S11'", "CALC1:PAR:SDEF 'Trc2','S21'"],
        trigger="INIT1:IMM",
        read=[("CALC1:DATA:TRAC? 'Trc1',SDAT", "block"), ("CALC1:DATA:TRAC? 'Trc2',SDAT", "block")],
        data_cmd="CALC1:DATA:TRAC? 'Trc1',SDAT",
    ),
    "copper": dict(
        cls=CopperMountainVNA,
        setup=["FORM:BORD SWAP", "FORM:DATA REAL", "TRIG:SOUR BUS"],
        ascii_setup=["FORM:BORD SWAP", "FORM:DATA ASC", "TRIG:SOUR BUS"],
        ifbw="SENS1:BWID",
        traces=["CALC1:PAR:COUN 2", "CALC1:PAR1:DEF S11", "CALC1:PAR2:DEF S21"],
        trigger="TRIG:SING",
        read=[("CALC1:TRAC1:DATA:SDAT?", "block"), ("CALC1:TRAC2:DATA:SDAT?", "block")],
        data_cmd="CALC1:TRAC1:DATA:SDAT?",
    ),
}


@pytest.fixture(params=sorted(FAMILIES))
def family(request):
    return FAMILIES[request.param]


def configure_pairs(fam, setup=None, power=True):
    pairs = [(c, None) for c in (setup or fam["setup"])]
    pairs += [
        ("SENS1:FREQ:STAR 2000000000", None),
        ("SENS1:FREQ:STOP 2500000000", None),
        ("SENS1:SWE:POIN 3", None),
        (f"{fam['ifbw']} 10000", None),
    ]
    if power:
        pairs.append(("SOUR1:POW -10", None))
    pairs += [
        ("SYST:ERR?", OK),
        ("SENS1:FREQ:STAR?", "2E9"),
        ("SENS1:FREQ:STOP?", "2.5E9"),
        ("SENS1:SWE:POIN?", "+3"),
        (f"{fam['ifbw']}?", "1.0E4"),
        ("SOUR1:POW?", "-10.00"),
    ]
    return pairs


def trace_pairs(fam):
    return [(c, None) for c in fam["traces"]] + [("SYST:ERR?", OK)]


def sweep_pairs(fam, block=BLOCK):
    reads = [(cmd, block if reply == "block" else reply) for cmd, reply in fam["read"]]
    return [(fam["trigger"], None), ("*OPC?", "1"), *reads, ("SYST:ERR?", OK)]


def test_configure_sends_setup_checks_errors_and_reads_back(family):
    with expected_protocol(family["cls"], configure_pairs(family)) as vna:
        vna.configure(2e9, 2.5e9, 3, 1e4, -10)
    assert np.allclose(vna.frequencies_hz(), [2e9, 2.25e9, 2.5e9])


def test_define_traces_then_sweep_returns_a_two_port_network_in_hz(family):
    pairs = configure_pairs(family) + trace_pairs(family) + sweep_pairs(family)
    with expected_protocol(family["cls"], pairs) as vna:
        vna.configure(2e9, 2.5e9, 3, 1e4, -10)
        vna.define_traces(["S11", "S21"])
        net = vna.sweep()
    expected = DATA[0::2] + 1j * DATA[1::2]
    assert net.nports == 2
    assert np.allclose(net.f, [2e9, 2.25e9, 2.5e9])
    assert np.allclose(net.s[:, 0, 0], expected) and np.allclose(net.s[:, 1, 0], expected)
    assert np.isnan(net.s[:, 0, 1]).all()  # S12 was not measured


@pytest.mark.parametrize(
    "name, single, select",
    [
        ("keysight", ["CALC1:PAR:COUN 1", "CALC1:PAR1:DEF S21"], "CALC1:PAR1:SEL"),
        (
            "pna",
            ["CALC:PAR:DEL:ALL", "CALC1:PAR:DEF:EXT 'CH1_S21','S21'"],
            "CALC1:PAR:SEL 'CH1_S21'",
        ),
    ],
)
def test_keysight_selects_a_trace_only_when_the_selection_changes(name, single, select):
    fam = FAMILIES[name]
    data = fam["data_cmd"]
    defined = [(c, None) for c in single] + [("SYST:ERR?", OK)]
    first = [(fam["trigger"], None), ("*OPC?", "1"), (select, None),
             (data, BLOCK), ("SYST:ERR?", OK)]  # fmt: skip
    second = [(fam["trigger"], None), ("*OPC?", "1"), (data, BLOCK), ("SYST:ERR?", OK)]
    with expected_protocol(fam["cls"], configure_pairs(fam) + defined + first + second) as vna:
        vna.configure(2e9, 2.5e9, 3, 1e4, -10)
        vna.define_traces(["S21"])
        vna.sweep_arrays()
        vna.sweep_arrays()


def test_pna_one_sweep_is_named_measurements_single_sweep_mode_and_sdata():
    """The whole PNA exchange for one S21 sweep, spelled out (no ENA-only command in it)."""
    pairs = [
        ("CALC:PAR:DEL:ALL", None), ("CALC1:PAR:DEF:EXT 'CH1_S21','S21'", None), ("SYST:ERR?", OK),
        ("FORM:BORD SWAP", None), ("FORM:DATA REAL,64", None), ("TRIG:SOUR IMM", None),
        ("SENS1:SWE:MODE HOLD", None), ("SYST:ERR?", OK),
        ("SENS1:FREQ:STAR?", "+2.00000000000E+009"), ("SENS1:FREQ:STOP?", "+2.50000000000E+009"),
        ("SENS1:SWE:POIN?", "+3"), ("SENS1:BWID?", "+1.00000000000E+004"),
        ("SENS1:SWE:MODE SING", None), ("*OPC?", "+1"),
        ("CALC1:PAR:SEL 'CH1_S21'", None), ("CALC1:DATA? SDATA", BLOCK), ("SYST:ERR?", OK),
    ]  # fmt: skip
    with expected_protocol(KeysightPNA, pairs) as vna:
        vna.define_traces(["S21"])
        data = vna.sweep_arrays()
    assert np.allclose(data["S21"], DATA[0::2] + 1j * DATA[1::2])


def test_sweep_without_configure_sets_the_session_up_first(family):
    pairs = trace_pairs(family)
    pairs += [(c, None) for c in family["setup"]] + [("SYST:ERR?", OK)]
    pairs += [
        ("SENS1:FREQ:STAR?", "2E9"),
        ("SENS1:FREQ:STOP?", "2.5E9"),
        ("SENS1:SWE:POIN?", "3"),
        (f"{family['ifbw']}?", "1E4"),
    ]
    pairs += sweep_pairs(family)
    with expected_protocol(family["cls"], pairs) as vna:
        vna.define_traces(["S11", "S21"])
        vna.sweep_arrays()


def test_ascii_transfer_uses_the_ascii_format(family):
    text = ",".join(f"{v:.6e}" for v in DATA)
    pairs = configure_pairs(family, family["ascii_setup"]) + trace_pairs(family)
    pairs += sweep_pairs(family, block=text)
    with expected_protocol(family["cls"], pairs, transfer_format="ascii") as vna:
        vna.configure(2e9, 2.5e9, 3, 1e4, -10)
        vna.define_traces(["S11", "S21"])
        data = vna.sweep_arrays()
    assert np.allclose(data["S21"], DATA[0::2] + 1j * DATA[1::2])


def test_rf_on_reads_and_sets_with_an_error_check(family):
    pairs = [("OUTP?", "1"), ("OUTP OFF", None), ("SYST:ERR?", OK), ("OUTP ON", None),
             ("SYST:ERR?", OK)]  # fmt: skip
    with expected_protocol(family["cls"], pairs) as vna:
        assert vna.rf_on is True
        vna.rf_on = False
        vna.rf_on = True


def test_each_setting_property_round_trips(family):
    pairs = [
        ("SENS1:FREQ:STAR 1000000000", None), ("SYST:ERR?", OK),
        ("SENS1:FREQ:STAR?", "1E9"),
        ("SENS1:SWE:POIN 1601", None), ("SYST:ERR?", OK),
        (f"{family['ifbw']} 1000", None), ("SYST:ERR?", OK),
        ("SOUR1:POW -20", None), ("SYST:ERR?", OK),
        ("SOUR1:POW?", "-20"),
        ("SENS1:FREQ:STOP?", "3E9"),
    ]  # fmt: skip
    with expected_protocol(family["cls"], pairs) as vna:
        vna.start_hz = 1e9
        assert vna.start_hz == 1e9
        vna.points = 1601
        vna.ifbw_hz = 1000
        vna.power_dbm = -20
        assert vna.power_dbm == -20
        assert vna.stop_hz == 3e9


def test_safe_state_turns_rf_off_and_confirms(family):
    with expected_protocol(family["cls"], [("OUTP OFF", None), ("OUTP?", "0")]) as vna:
        vna.safe_state()
    with expected_protocol(family["cls"], [("OUTP OFF", None), ("OUTP?", "1")]) as vna:
        with pytest.raises(InstrumentError, match="still on"):
            vna.safe_state()


def test_identity_parses_idn(family):
    idn = "Keysight Technologies,E5080B,MY12345678,A.15.10.05"
    with expected_protocol(family["cls"], [("*IDN?", idn)]) as vna:
        assert vna.identity() == {
            "maker": "Keysight Technologies",
            "model": "E5080B",
            "serial": "MY12345678",
            "firmware": "A.15.10.05",
        }


def test_power_above_the_station_limit_is_refused_before_anything_is_sent(family):
    with expected_protocol(family["cls"], [], limits={"power_dbm": [-40, 0]}) as vna:
        with pytest.raises(LimitError, match=r"power_dbm=5 dBm is outside the lab limit -40..0"):
            vna.configure(2e9, 2.5e9, 3, 1e4, power_dbm=5)
        with pytest.raises(LimitError, match="lab limit"):
            vna.power_dbm = 1
        with pytest.raises(LimitError, match="start_hz=3e\\+09 must be below"):
            vna.configure(3e9, 2e9, 3, 1e4)
        with pytest.raises(LimitError, match="points"):
            vna.configure(2e9, 3e9, 1, 1e4)


def test_an_instrument_error_is_raised_quoting_the_instrument(family):
    pairs = [("SOUR1:POW -10", None), ("SYST:ERR?", '-222,"Data out of range"'),
             ("SYST:ERR?", '-113,"Undefined header"'), ("SYST:ERR?", OK)]  # fmt: skip
    with expected_protocol(family["cls"], pairs) as vna:
        with pytest.raises(InstrumentError) as err:
            vna.power_dbm = -10
    text = str(err.value)
    assert '-222,"Data out of range"' in text and '-113,"Undefined header"' in text
    assert "power_dbm=-10" in text


def test_a_garbage_block_is_a_parse_error_naming_the_command(family):
    pairs = configure_pairs(family) + trace_pairs(family)
    pairs += [(family["trigger"], None), ("*OPC?", "1")]
    pairs += [(family["read"][0][0], None)] if family["read"][0][1] is None else []
    pairs += [(family["data_cmd"], b"#Zgarbage\xff")]
    with expected_protocol(family["cls"], pairs) as vna:
        vna.configure(2e9, 2.5e9, 3, 1e4, -10)
        vna.define_traces(["S11", "S21"])
        with pytest.raises(InstrumentError, match="vna: .*" + re.escape(f"'{family['data_cmd']}'")):
            vna.sweep()


def test_a_truncated_block_is_a_parse_error_naming_the_command(family):
    pairs = configure_pairs(family) + trace_pairs(family)
    pairs += [(family["trigger"], None), ("*OPC?", "1")]
    pairs += [(family["read"][0][0], None)] if family["read"][0][1] is None else []
    pairs += [(family["data_cmd"], BLOCK[:30])]
    with expected_protocol(family["cls"], pairs) as vna:
        vna.configure(2e9, 2.5e9, 3, 1e4, -10)
        vna.define_traces(["S11", "S21"])
        with pytest.raises(
            InstrumentError, match="truncated .*" + re.escape(f"'{family['data_cmd']}'")
        ):
            vna.sweep()


def test_a_block_of_the_wrong_length_is_refused(family):
    short = b"#232" + DATA[:4].astype("<f8").tobytes()
    pairs = configure_pairs(family) + trace_pairs(family)
    pairs += [(family["trigger"], None), ("*OPC?", "1")]
    pairs += [(family["read"][0][0], None)] if family["read"][0][1] is None else []
    pairs += [(family["data_cmd"], short)]
    with expected_protocol(family["cls"], pairs) as vna:
        vna.configure(2e9, 2.5e9, 3, 1e4, -10)
        vna.define_traces(["S11", "S21"])
        with pytest.raises(InstrumentError, match="4 values, expected 6"):
            vna.sweep()


def test_opc_must_answer_one(family):
    pairs = configure_pairs(family) + trace_pairs(family)
    pairs += [(family["trigger"], None), ("*OPC?", "0")]
    with expected_protocol(family["cls"], pairs) as vna:
        vna.configure(2e9, 2.5e9, 3, 1e4, -10)
        vna.define_traces(["S11", "S21"])
        with pytest.raises(InstrumentError, match=r"\*OPC\?"):
            vna.sweep()


def test_bad_traces_and_sweeping_without_traces_are_refused(family):
    with expected_protocol(family["cls"], []) as vna:
        with pytest.raises(BadInput, match="S-parameters"):
            vna.define_traces(["S31"])
        with pytest.raises(BadInput, match="define_traces"):
            vna.sweep()


def test_unknown_options_and_missing_address_are_config_errors(family):
    with pytest.raises(ConfigError, match="unknown option"):
        family["cls"](address="TCPIP::1.2.3.4::5025::SOCKET", baud=9600)
    # the known options are the driver's own keyword arguments, not injected ones
    with pytest.raises(ConfigError, match=r"known: address, timeout_s, channel, transfer_format"):
        family["cls"](address="TCPIP::1.2.3.4::5025::SOCKET", baud=9600)
    with pytest.raises(ConfigError, match="no address"):
        family["cls"]()


def test_sweep_timeout_is_derived_from_the_sweep_time(family):
    pairs = configure_pairs(family) + trace_pairs(family)
    with expected_protocol(family["cls"], pairs, timeout_s=2.0) as vna:
        vna.configure(2e9, 2.5e9, 3, 1e4, -10)
        vna.define_traces(["S11", "S21"])
    expected = 3 * (1 / 1e4 + 20e-6)
    assert vna.expected_sweep_s() == pytest.approx(expected)
    assert vna.sweep_timeout_s() == pytest.approx(2.0 + 2 * expected)


@pytest.mark.parametrize(
    "reply, message",
    [
        ("0", r"says ifbw_hz=0 Hz, which a \w+ cannot be set to"),
        ("9.91E37", "is not a finite number"),  # SCPI's 'not a number'
    ],
)
def test_an_impossible_read_back_is_an_instrument_error_not_a_crash(family, reply, message):
    ifbw = family["ifbw"]
    with expected_protocol(family["cls"], [(f"{ifbw}?", reply)]) as vna:
        with pytest.raises(InstrumentError, match=message):
            vna.ifbw_hz  # noqa: B018 (the read is the test)


def test_scpi_not_a_number_in_sweep_data_is_refused():
    from labpnn.drivers.vna.replies import parse_ascii_values

    with pytest.raises(InstrumentError, match="non-finite values"):
        parse_ascii_values("0.1,9.91E+37,0.3", "CALC1:DATA:SDAT?", 3)
