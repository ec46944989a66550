"""The bundled acoustic stations, and the bench as a PhysicalLayer on them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labpnn.bench import make_bench
from labpnn.bench.acoustic import AcousticBench
from labpnn.errors import ConfigError, LimitError, MissingDependency
from labpnn.station import load_station


def test_the_simulated_station_measures_a_batch_through_the_acoustic_bench(connect_station):
    station = connect_station()
    bench = make_bench(station)
    assert isinstance(bench, AcousticBench) and bench.n_in == bench.n_out == 20
    x = torch.rand(16, 20, generator=torch.Generator().manual_seed(0))
    y = bench(x)
    assert y.shape == (16, 20) and torch.all(torch.isfinite(y)) and torch.all(y > 0)
    assert bench.queries == 16
    per_call = (480 + bench.plan.n_samples + 2400) / 48000 + 0.01
    assert bench.hardware_s == pytest.approx(16 * per_call)  # simulated seconds, not wall time
    level = station.snapshot()["components"]["audio"]["parameters"]["output_level"]
    assert level["value"] == pytest.approx(0.5) and level["unit"] == "FS"


def test_inputs_are_clipped_to_zero_one_before_becoming_tone_amplitudes(connect_station):
    bench = AcousticBench(connect_station("bench.simulation.transport=direct",
                                          "bench.simulation.noise.mic_rms_fs=0"))  # fmt: skip
    x = np.linspace(-0.5, 1.5, 20)[None, :]
    np.testing.assert_allclose(bench.encode(x), np.clip(x, 0, 1) / 20)
    state = bench.state_dict()
    y_raw = bench(x).numpy()
    bench.load_state_dict(state)
    np.testing.assert_array_equal(bench(np.clip(x, 0, 1)).numpy(), y_raw)


def test_station_safe_state_mutes_the_speaker_and_the_bench_then_refuses(connect_station):
    station = connect_station()
    bench = AcousticBench(station)
    assert station.safe_state() == {"audio": "ok"}
    assert station["audio"].output_level == 0.0
    with pytest.raises(ConfigError, match="muted"):
        bench(np.full((1, 20), 0.5))


def test_a_configured_level_above_the_lab_limit_stops_the_station_before_playing():
    config = load_station("acoustic-sim", ["instruments.audio.settings.output_level=0.8"])
    with pytest.raises(LimitError, match="lab limit 0..0.5"):
        config.check()
    with pytest.raises(LimitError):
        config.connect()


def test_the_lab_example_needs_portaudio_and_says_how_to_get_it():
    config = load_station("acoustic-lab.example")
    assert not config.simulated
    with pytest.raises(MissingDependency, match="apt-get install libportaudio2"):
        config.check()
