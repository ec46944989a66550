"""The VNA families labpnn drives: a dialect and a capability envelope each.

The ranges are family-wide envelopes (the widest model of each family); a given model
refuses tighter values itself, and the driver reports that from the error queue.
"""

from __future__ import annotations

from labpnn.drivers.vna.dialects import (
    COPPER_MOUNTAIN,
    KEYSIGHT,
    KEYSIGHT_PNA,
    ROHDE_SCHWARZ,
)
from labpnn.drivers.vna.scpi_vna import ScpiVNA, vna_settings


class KeysightENA(ScpiVNA):
    """Keysight ENA (E5071C, E5080A/B), over LAN (port 5025) or USB/GPIB.

    The PNA family speaks another dialect (named measurements, no bus trigger): use
    :class:`KeysightPNA` for it.
    """

    DIALECT = KEYSIGHT
    SETTINGS = vna_settings((9e3, 53e9), 100_001, (1.0, 15e6), (-100.0, 20.0))  # E5080B: 53 GHz


class KeysightPNA(ScpiVNA):
    """Keysight PNA, PNA-L and PNA-X (E836x, N522x, N523x, N524x), over LAN (port 5025) or
    USB/GPIB.

    Its traces are named measurements ``CH<ch>_<S-parameter>``, created undisplayed after
    ``CALC:PAR:DEL:ALL``, which deletes the measurements of *all* channels (feed them to a
    window from the front panel to watch them). Needs firmware with ``CALC:PAR:DEF:EXT``.
    """

    DIALECT = KEYSIGHT_PNA
    SETTINGS = vna_settings((9e3, 67e9), 100_001, (1.0, 15e6), (-100.0, 20.0))


class RohdeSchwarzZNB(ScpiVNA):
    """Rohde & Schwarz ZNB/ZNBT/ZNA, over LAN (HiSLIP or port 5025) or USB/GPIB."""

    DIALECT = ROHDE_SCHWARZ
    SETTINGS = vna_settings((9e3, 67e9), 100_001, (1.0, 10e6), (-150.0, 25.0))


class CopperMountainVNA(ScpiVNA):
    """Copper Mountain USB VNAs (Cobalt, Planar, S5xxx, M5xxx) through the S2VNA/S4VNA
    software's socket server (port 5025 by default)."""

    DIALECT = COPPER_MOUNTAIN
    SETTINGS = vna_settings((9e3, 54e9), 500_001, (1.0, 3e6), (-60.0, 20.0))
