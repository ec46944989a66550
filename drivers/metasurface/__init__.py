"""Programmable metasurfaces: a serial controller that sets each element on or off."""

from labpnn.drivers.metasurface.controller import (
    MetasurfaceController,
    bits_to_hex,
    hex_to_bits,
)

__all__ = ["MetasurfaceController", "bits_to_hex", "hex_to_bits"]
