"""Fixtures for the acoustic bench: a simulated world and sound card, or a whole station.

The repository's conftest already gives each test its own ``LABPNN_DATA_DIR`` and
``LABPNN_STATE_DIR``; here we also pin numpy's BLAS to one thread, because the cavity's
eigen-decomposition oversubscribes a two-core CI machine otherwise.
"""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_limits

from labpnn.drivers.audio import SoundCard
from labpnn.mock_instruments.acoustic_world import AcousticWorld
from labpnn.station import InstrumentConfig, load_station


@pytest.fixture(autouse=True, scope="session")
def one_blas_thread():
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(autouse=True)
def lab_dirs_here(tmp_path, monkeypatch):
    """Per-test data and state directories (repeated here so this folder runs on its own)."""
    monkeypatch.setenv("LABPNN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LABPNN_STATE_DIR", str(tmp_path / "state"))


def build_card(layout=None, limits=None, level=0.5, options=None, **simulation):
    """A simulated world and the real SoundCard driver on its back-end, as the station wires them."""
    options = dict(options or {})
    limits = {"output_level": [0, 0.5]} if limits is None else limits
    config = InstrumentConfig(
        "audio", "labpnn.drivers.audio.SoundCard", True, options, limits, {}, {}
    )
    world = AcousticWorld(layout or {}, {"seed": 1, **simulation}, {"audio": config})
    card = SoundCard(
        label="audio", limits=limits, **options, **world.driver_kwargs("audio", options)
    )
    world.wire("audio", card)
    if level:
        card.output_level = level
    return world, card


@pytest.fixture
def sim_card():
    world, card = build_card()
    yield world, card
    card.close()
    world.close()


@pytest.fixture
def connect_station():
    """``connect_station(*overrides)`` -> the bundled acoustic-sim station, closed afterwards."""
    opened = []

    def connect(*overrides, name="acoustic-sim"):
        station = load_station(name, list(overrides)).connect()
        opened.append(station)
        return station

    yield connect
    for station in opened:
        station.close()
