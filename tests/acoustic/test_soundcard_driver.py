"""The sound-card driver: PortAudio import, limits, channel maps, safe state, errors."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from labpnn.drivers.audio import SoundCard
from labpnn.errors import (
    ConfigError,
    DeviceLost,
    InstrumentError,
    InstrumentTimeout,
    LimitError,
    MissingDependency,
)


class PortAudioError(Exception):
    pass


class RecordingBackend:
    """sounddevice's call shape; records every playback and answers with a delayed copy."""

    PortAudioError = PortAudioError

    def __init__(self, latency=300, channels=4, fail=None):
        self.latency, self.channels, self.fail = latency, channels, fail
        self.played, self.stops = [], 0

    def query_devices(self, device=None, kind=None):
        return {"name": "Fake USB card", "hostapi": 0, "max_input_channels": self.channels,
                "max_output_channels": self.channels}  # fmt: skip

    def query_hostapis(self, index=None):
        return {"name": "ALSA"}

    def playrec(self, data, samplerate=None, input_mapping=None, output_mapping=None,
                blocking=False, **kwargs):  # fmt: skip
        if self.fail:
            raise PortAudioError(self.fail)
        self.played.append({"data": np.array(data), "in": input_mapping, "out": output_mapping,
                            "samplerate": samplerate, "blocking": blocking})  # fmt: skip
        # every input hears the last output column, delayed
        delayed = np.zeros(len(data), np.float32)
        lag = min(self.latency, len(data))
        delayed[lag:] = data[: len(data) - lag, -1]
        return np.column_stack([delayed] * len(input_mapping))

    def stop(self, ignore_errors=True):
        self.stops += 1


def test_missing_portaudio_is_a_missing_dependency_with_the_install_command():
    # the real import path: PortAudio is not installed on this machine
    with pytest.raises(MissingDependency) as err:
        SoundCard()
    assert "libportaudio2" in str(err.value) and "Windows" in str(err.value)
    with pytest.raises(MissingDependency, match="libportaudio2"):
        SoundCard.check_available({})


def test_missing_sounddevice_package_says_pip_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # makes `import sounddevice` fail
    with pytest.raises(MissingDependency, match="pip install sounddevice"):
        SoundCard()


def test_the_driver_imports_sounddevice_only_when_opened(monkeypatch):
    fake = RecordingBackend()
    module = types.ModuleType("sounddevice")
    for name in ("query_devices", "query_hostapis", "playrec", "stop"):
        setattr(module, name, getattr(fake, name))
    module.PortAudioError = PortAudioError
    monkeypatch.setitem(sys.modules, "sounddevice", module)
    card = SoundCard(limits={"output_level": [0, 0.5]})
    assert card.identity() == {
        "maker": "ALSA",
        "model": "Fake USB card",
        "serial": "",
        "firmware": "",
    }
    card.output_level = 0.2
    card.playrec(np.full(1000, 0.5))
    assert len(fake.played) == 1


def test_a_level_above_the_lab_limit_is_refused_before_anything_is_played():
    backend = RecordingBackend()
    card = SoundCard(limits={"output_level": [0, 0.5]}, backend=backend)
    with pytest.raises(LimitError, match=r"output_level=0.8 FS is outside the lab limit 0..0.5"):
        card.output_level = 0.8
    with pytest.raises(LimitError, match="outside this SoundCard's 0..1"):
        card.output_level = 1.5
    assert card.output_level == 0.0
    assert backend.played == []


def test_a_signal_above_full_scale_or_not_finite_is_refused_before_playing():
    backend = RecordingBackend()
    card = SoundCard(backend=backend)
    card.output_level = 0.3
    with pytest.raises(LimitError, match="peaks at 1.2 FS"):
        card.playrec(np.full(100, 1.2))
    with pytest.raises(LimitError, match="NaN"):
        card.playrec(np.array([0.1, np.nan]))
    assert backend.played == []


def test_playrec_uses_explicit_channel_maps_and_the_output_level():
    backend = RecordingBackend()
    card = SoundCard(backend=backend, output_channels={"speaker": 3}, input_channels={"mic": 1},
                     loopback=(2, 4))  # fmt: skip
    card.output_level = 0.25
    signal = np.linspace(-1, 1, 500)
    response, loop = card.playrec(signal, "speaker", "mic")
    call = backend.played[0]
    assert call["out"] == [3, 2] and call["in"] == [1, 4]
    assert call["blocking"] and call["samplerate"] == 48000
    np.testing.assert_allclose(call["data"][:, 0], 0.25 * signal, rtol=1e-6)
    assert response.shape == loop.shape == (500,)


def test_a_loopback_that_taps_the_speaker_output_plays_one_column():
    backend = RecordingBackend()
    card = SoundCard(backend=backend, loopback=(1, 2))
    card.output_level = 0.1
    card.playrec(np.zeros(64))
    assert backend.played[0]["out"] == [1]


def test_measure_aligns_by_the_loopback():
    backend = RecordingBackend(latency=777)
    card = SoundCard(backend=backend)
    card.output_level = 0.5
    signal = 0.5 * np.sin(np.arange(3000) / 7.0)
    aligned = card.measure(signal)
    assert card.last_latency_samples == 777
    np.testing.assert_allclose(aligned, 0.5 * signal, atol=1e-6)


def test_safe_state_mutes_and_stops_even_when_the_lab_limit_excludes_zero():
    backend = RecordingBackend()
    card = SoundCard(limits={"output_level": [0.1, 0.5]}, backend=backend)
    card.output_level = 0.4
    card.safe_state()
    assert card.output_level == 0.0 and backend.stops == 1
    card.playrec(np.full(200, 0.5))  # a muted card plays silence ...
    assert not np.any(backend.played[-1]["data"])
    with pytest.raises(InstrumentError, match="muted"):  # ... and refuses to measure
        card.measure(np.full(200, 0.5))


def test_configuration_mistakes_are_explained():
    with pytest.raises(ConfigError, match="unknown option"):
        SoundCard(backend=RecordingBackend(), adress="hw:1")
    with pytest.raises(ConfigError, match="output channel 5 does not exist on 'Fake USB card'"):
        SoundCard(backend=RecordingBackend(channels=4), output_channels={"speaker": 5})
    with pytest.raises(ConfigError, match="both the loopback and a measurement input"):
        SoundCard(backend=RecordingBackend(), input_channels={"mic": 2}, loopback=(2, 2))


@pytest.mark.parametrize(
    "message, error",
    [
        ("Error opening Stream: Device unavailable [PaErrorCode -9985]", DeviceLost),
        ("Stream timed out [PaErrorCode -9987]", InstrumentTimeout),
        ("Output underflowed", InstrumentError),
    ],
)
def test_portaudio_errors_become_lab_errors(message, error):
    card = SoundCard(backend=RecordingBackend(fail=message))
    card.output_level = 0.1
    with pytest.raises(error, match="audio: "):
        card.playrec(np.zeros(10))


def test_settings_snapshot_has_units_and_limits():
    card = SoundCard(limits={"output_level": [0, 0.5]}, backend=RecordingBackend())
    snap = card.settings_snapshot()
    assert snap["output_level"] == {"value": 0.0, "unit": "FS", "limits": (0.0, 0.5)}
    assert snap["loopback"]["value"] == (2, 2)
