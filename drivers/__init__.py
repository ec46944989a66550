"""Instrument drivers, one subpackage per instrument family (``labpnn.drivers``).

Each driver speaks a real transport (VISA, serial, a screen, a camera SDK, a sound card).
A simulated instrument keeps its driver: only the transport underneath is replaced.
Drivers never import ``labpnn.mock_instruments``.
"""
