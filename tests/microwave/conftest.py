"""Fixtures for the microwave bench: a simulated world, a connected VNA, whole stations.

Data and state directories are per test (the root conftest's ``lab_dirs``).
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from labpnn.drivers.vna import KeysightENA
from labpnn.mock_instruments.microwave_world import MicrowaveWorld
from labpnn.station import StationConfig


@pytest.fixture
def make_world():
    worlds = []

    def make(layout=None, **simulation):
        simulation.setdefault("seed", 1)
        world = MicrowaveWorld(layout or {}, simulation, {})
        worlds.append(world)
        return world

    yield make
    for world in worlds:
        world.close()


@pytest.fixture
def world(make_world):
    return make_world(noise=0.0)


@pytest.fixture
def connect_vna():
    drivers = []

    def connect(world, cls=KeysightENA, points=201, traces=("S21",), **options):
        vna = cls(address=world.vna_address, **options)
        vna.configure(2.0e9, 2.5e9, points, 1e4, -10)
        vna.define_traces(list(traces))
        drivers.append(vna)
        return vna

    yield connect
    for vna in drivers:
        vna.close()


@pytest.fixture
def connect_station():
    stations = []

    def connect(*overrides, name="microwave-sim"):
        station = StationConfig.load(name, list(overrides)).connect()
        stations.append(station)
        return station

    yield connect
    for station in stations:
        with contextlib.suppress(Exception):
            station.close()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
