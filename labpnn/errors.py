"""The error vocabulary shared by every layer.

Each class maps to one outcome of a run, so the runner can turn any of them into the
right exit code and ledger status without parsing messages.
"""

from __future__ import annotations

from collections.abc import Iterable


def did_you_mean(unknown: Iterable[str], known: Iterable[str]) -> str:
    """`` (did you mean 'epochs'?)`` for the closest known names to misspelt ones, else ``""``."""
    import difflib

    if isinstance(unknown, str):  # one name, not its letters
        unknown = [unknown]
    known = [str(k) for k in known]
    close = [
        match[0]
        for name in unknown
        if (match := difflib.get_close_matches(str(name), known, n=1, cutoff=0.75))
    ]
    if not close:
        return ""
    return " (did you mean " + " or ".join(f"'{c}'" for c in dict.fromkeys(close)) + "?)"


class LabpnnError(Exception):
    """Base class: a condition labpnn understands and can explain in one line."""


class BadInput(LabpnnError):
    """The user asked for something invalid; nothing was started (exit code 2)."""


class ConfigError(BadInput):
    """A station config or schedule is malformed or names something unknown."""


class LimitError(BadInput):
    """A value lies outside an instrument's capability or the lab's safety limit."""


class MissingDependency(BadInput):
    """An SDK or system library a real instrument needs is not installed."""


class InstrumentError(LabpnnError):
    """The instrument reported an error, or replied with something we cannot parse."""


class InstrumentTimeout(InstrumentError):
    """The instrument did not answer within the set timeout."""


class DeviceLost(InstrumentError):
    """The instrument vanished mid-run (unplugged, connection dropped)."""


class BadCalibration(LabpnnError):
    """A calibration's data are unusable (NaN or Inf from the hardware); it was not registered."""


class BenchBusy(LabpnnError):
    """Another run or the GUI holds the instrument locks."""


class RunAborted(LabpnnError):
    """The operator (or a parent process) asked the run to stop."""


class WatchdogExpired(LabpnnError):
    """The run stopped reporting progress for longer than its declared bound."""
