"""Benches as PhysicalLayers: encode -> actuate -> settle -> sense -> decode.

Learning code sees only the :class:`~labpnn.physical.PhysicalLayer` interface; this
package turns a connected station into one. A simulated station configured with
``simulation.transport: direct`` is measured through its world's batched path instead
of the drivers (for long studies); both give the same outputs for the same seed.
"""

from __future__ import annotations

import importlib
from typing import Any

from labpnn.errors import ConfigError

BENCHES = {
    "optical": "labpnn.bench.optical:OpticalBench",
    "acoustic": "labpnn.bench.acoustic:AcousticBench",
    "microwave": "labpnn.bench.microwave:MicrowaveBench",
}


def make_bench(station: Any, **options: Any) -> Any:
    """The PhysicalLayer for a connected station's bench."""
    try:
        target = BENCHES[station.bench.kind]
    except KeyError:
        raise ConfigError(f"no PhysicalLayer for bench kind '{station.bench.kind}'") from None
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)(station, **options)


def __getattr__(name: str) -> Any:
    # Re-export the torch-only protocol lazily, so importing labpnn.bench stays cheap.
    if name in {"PhysicalLayer", "FunctionLayer"}:
        return getattr(importlib.import_module("labpnn.physical"), name)
    raise AttributeError(name)
