"""Vector network analysers: one shared SCPI implementation, one class per family.

``KeysightENA`` (ENA and PNA), ``RohdeSchwarzZNB`` and ``CopperMountainVNA`` differ only by
their :mod:`~labpnn.drivers.vna.dialects` table and capability ranges.
"""

from labpnn.drivers.vna.families import CopperMountainVNA, KeysightENA, RohdeSchwarzZNB
from labpnn.drivers.vna.scpi_vna import S_PARAMETERS, ScpiVNA

__all__ = ["CopperMountainVNA", "KeysightENA", "RohdeSchwarzZNB", "S_PARAMETERS", "ScpiVNA"]
