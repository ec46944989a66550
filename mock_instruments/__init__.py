"""Simulated instruments: wave simulators served through the transports real drivers use.

Only the station loader, the ``labpnn mock-server`` command, tests and benchmarks may
import this package. Drivers, procedures and learning code never do.

Each bench kind has one simulated *world* (the optics, the acoustic cavity, the
microwave cavity). The station asks it for the transport each simulated instrument's
driver should use (``driver_kwargs``) and lets it observe the drivers (``wire``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from labpnn.errors import ConfigError

WORLDS = {
    "optical": "labpnn.mock_instruments.optical_world:OpticalWorld",
    "acoustic": "labpnn.mock_instruments.acoustic_world:AcousticWorld",
    "microwave": "labpnn.mock_instruments.microwave_world:MicrowaveWorld",
}


def world_class(kind: str) -> type:
    try:
        target = WORLDS[kind]
    except KeyError:
        raise ConfigError(
            f"no simulated world for bench kind '{kind}' (known: {', '.join(WORLDS)})"
        ) from None
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def build_world(bench: Any, instruments: Mapping[str, Any]) -> Any:
    """Create the simulated world for a bench config (``labpnn.station.BenchConfig``)."""
    return world_class(bench.kind)(bench.layout, bench.simulation, instruments)
