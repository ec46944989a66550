"""Vector network analysers: one shared SCPI implementation, one class per family.

``KeysightENA`` (ENA: E5071C, E5080A/B), ``KeysightPNA`` (PNA, PNA-L, PNA-X),
``RohdeSchwarzZNB`` and ``CopperMountainVNA`` differ only by their
:mod:`~labpnn.drivers.vna.dialects` table and capability ranges.
"""

from labpnn.drivers.vna.families import (
    CopperMountainVNA,
    KeysightENA,
    KeysightPNA,
    RohdeSchwarzZNB,
)
from labpnn.drivers.vna.scpi_vna import S_PARAMETERS, ScpiVNA

__all__ = [
    "CopperMountainVNA",
    "KeysightENA",
    "KeysightPNA",
    "RohdeSchwarzZNB",
    "S_PARAMETERS",
    "ScpiVNA",
]
