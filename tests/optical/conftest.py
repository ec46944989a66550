"""Optical tests: offscreen Qt, pylon's camera emulator, and simulated stations by override.

``PYLON_CAMEMU`` must be set before pypylon is first imported in the process, so it is
set here, at collection time. The shared tests/conftest.py already gives every test its
own LABPNN_DATA_DIR / LABPNN_STATE_DIR, one BLAS thread and QT_QPA_PLATFORM=offscreen.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYLON_CAMEMU", "1")

REPO = Path(__file__).resolve().parents[2]
OPTICAL_SIM = REPO / "data" / "stations" / "optical-sim.yaml"

# A small, quick bench for tests that need many frames: 8x8 macropixels, 32x32 camera.
SMALL = (
    "instruments.slm.resolution=[128, 128]",
    "bench.layout.macropixels=[8, 8]",
    "bench.layout.macropixel_px=8",
    "bench.layout.reference_border=2",
    "bench.layout.camera_roi=[0, 0, 32, 32]",
    "bench.simulation.camera.sensor=[64, 64]",
)


@pytest.fixture
def station():
    """``station(*overrides, small=False)`` -> a connected optical-sim station, closed after."""
    from labpnn.station import load_station

    opened = []

    def connect(*overrides: str, small: bool = False):
        st = load_station(OPTICAL_SIM, [*(SMALL if small else ()), *overrides]).connect()
        opened.append(st)
        return st

    yield connect
    for st in opened:
        st.close()
