"""Spatial light modulators (``labpnn.drivers.slm``).

:class:`ScreenSLM` drives any SLM that is a screen (video input), through a frameless
full-screen Qt window; vendor-SDK SLMs plug in through :mod:`.vendors`.
"""

from labpnn.drivers.slm.screen import MemoryDisplay, ScreenSLM

__all__ = ["MemoryDisplay", "ScreenSLM"]
