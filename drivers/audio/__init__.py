"""Sound cards: a speaker and a microphone through ``sounddevice``, aligned by a loopback cable."""

from labpnn.excitation import MultitonePlan

from .soundcard import SoundCard, load_sounddevice

__all__ = ["MultitonePlan", "SoundCard", "load_sounddevice"]
