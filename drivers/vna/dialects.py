"""Where the VNA families differ: one small table of SCPI strings per family.

Learned from the vendors' programming manuals (and scikit-rf's ``skrf/vi/vna`` and qcodes'
N52xx, ZNB and M5xxx drivers as readings of them). Placeholders: ``{ch}`` channel, ``{i}``
trace number, ``{n}`` trace count, ``{param}`` S-parameter name, ``{value}``.

* Keysight ENA (E5071C, E5080A/B): numbered traces (``CALC:PAR<i>:DEF``), read the
  *selected* trace with ``CALC:DATA:SDAT?``, bus trigger + ``TRIG:SING``.
* Keysight PNA/PNA-X (N52xx, E836x): *named measurements* (``CALC:PAR:DEF:EXT
  'CH1_S21','S21'``, created undisplayed), selected by name (``CALC:PAR:SEL``) and read with
  ``CALC:DATA? SDATA``; there is no ``CALC:PAR:COUN`` trace count and no ``TRIG:SOUR BUS``:
  the trigger stays internal (``TRIG:SOUR IMM``), the channel is held
  (``SENS:SWE:MODE HOLD``) and one sweep is ``SENS:SWE:MODE SING`` + ``*OPC?``.
  ``CALC:PAR:DEL:ALL`` takes no channel and deletes the measurements of *every* channel.
* Rohde & Schwarz ZNB/ZNA: named traces (``CALC:PAR:SDEF 'Trc1','S21'``), read by name,
  ``INIT:CONT OFF`` + ``INIT:IMM``; IF bandwidth is ``SENS:BAND``.
* Copper Mountain (S2VNA/S4VNA software: Cobalt, Planar, M5xxx): numbered traces read by
  number with ``CALC:TRAC<i>:DATA:SDAT?``; ``FORM:DATA REAL`` is already 64-bit.

All of them need ``FORM:BORD SWAP`` sent explicitly for little-endian data (DESIGN.md: the
E5071C keeps big-endian across ``*RST``; on the PNA, ``NORMal`` is the default too).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    family: str
    start_hz: str = "SENS{ch}:FREQ:STAR"
    stop_hz: str = "SENS{ch}:FREQ:STOP"
    points: str = "SENS{ch}:SWE:POIN"
    ifbw_hz: str = "SENS{ch}:BWID"
    power_dbm: str = "SOUR{ch}:POW"
    rf_on: str = "OUTP"
    byte_order: str = "FORM:BORD SWAP"
    binary_format: str = "FORM:DATA REAL,64"
    ascii_format: str = "FORM:DATA ASCII,0"
    single_shot: tuple[str, ...] = ("TRIG:SOUR BUS",)  # sent once: sweep only on trigger
    trigger: str = "TRIG:SING"
    traces_reset: str = "CALC{ch}:PAR:COUN {n}"
    trace_define: str = "CALC{ch}:PAR{i}:DEF {param}"
    trace_select: str | None = "CALC{ch}:PAR{i}:SEL"
    trace_data: str = "CALC{ch}:DATA:SDAT?"
    error_query: str = "SYST:ERR?"


KEYSIGHT = Dialect(family="Keysight ENA")

KEYSIGHT_PNA = Dialect(
    family="Keysight PNA/PNA-X",
    single_shot=("TRIG:SOUR IMM", "SENS{ch}:SWE:MODE HOLD"),
    trigger="SENS{ch}:SWE:MODE SING",
    traces_reset="CALC:PAR:DEL:ALL",
    trace_define="CALC{ch}:PAR:DEF:EXT 'CH{ch}_{param}','{param}'",
    trace_select="CALC{ch}:PAR:SEL 'CH{ch}_{param}'",
    trace_data="CALC{ch}:DATA? SDATA",
)

ROHDE_SCHWARZ = Dialect(
    family="Rohde & Schwarz ZNB",
    ifbw_hz="SENS{ch}:BAND",
    binary_format="FORM REAL,64",
    ascii_format="FORM ASC,0",
    single_shot=("INIT{ch}:CONT OFF",),
    trigger="INIT{ch}:IMM",
    traces_reset="CALC{ch}:PAR:DEL:ALL",
    trace_define="CALC{ch}:PAR:SDEF 'Trc{i}','{param}'",
    trace_select=None,
    trace_data="CALC{ch}:DATA:TRAC? 'Trc{i}',SDAT",
)

COPPER_MOUNTAIN = Dialect(
    family="Copper Mountain S2VNA/S4VNA",
    binary_format="FORM:DATA REAL",
    ascii_format="FORM:DATA ASC",
    trace_select=None,
    trace_data="CALC{ch}:TRAC{i}:DATA:SDAT?",
)
