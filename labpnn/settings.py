"""One declaration per instrument setting: name, unit, capability range and lab limit.

pymeasure's ``control()`` records no unit, and the lab's safety limits (maximum VNA
power, exposure range, speaker level) come from the station config, not the driver.
So each driver lists its settings once, as :class:`Setting` objects, and:

* its setters call :meth:`InstrumentSettings.check` before anything is sent, which
  enforces both the device's capability range and the station's lab limit, so no
  path (procedure, GUI, alignment tool) can bypass them;
* the station generates qcodes parameters (unit, validator) from the same list.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from labpnn.errors import ConfigError, LimitError


class UnknownSetting(ConfigError, KeyError):
    """A setting name the driver does not have (a ConfigError: usually a typo in a station)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


_TRUE = {"1", "true", "on", "yes"}
_FALSE = {"0", "false", "off", "no"}


def as_bool(value: Any) -> bool:
    """A switch from a station file or ``--set``: ``bool("off")`` is True, so parse words.

    Accepts booleans, 0/1 and on/off, true/false, yes/no (any case); anything else is refused,
    never guessed (an RF output must not turn on because a string was not empty).
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(value)


@dataclass(frozen=True)
class Setting:
    name: str
    unit: str = ""
    doc: str = ""
    range: tuple[float, float] | None = None  # what the instrument family can do
    choices: tuple[Any, ...] | None = None
    kind: type = float
    settable: bool = True
    snapshot: bool = True  # False for settings that are expensive or meaningless to read


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


# Parameters the station, a simulated world or a test injects; not options a user writes.
_INJECTED = frozenset({"self", "label", "limits", "adapter", "backend", "clock", "connection"})


def declared_options(cls: type) -> dict[str, Any] | None:
    """The options a driver's constructor takes by name (its signature), or None if unreadable."""
    import inspect

    try:
        parameters = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return None
    return {
        name: p
        for name, p in parameters.items()
        if name not in _INJECTED and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }


def refuse_unknown_options(label: str, cls: type, options: Mapping[str, Any]) -> None:
    """A typo in the station file must not be silently ignored: name it and the known options.

    The known options are read from ``cls.__init__``'s signature, so the list cannot go stale.
    """
    if not options:
        return
    known = list(declared_options(cls) or {})
    raise ConfigError(
        f"{label}: unknown option(s) {', '.join(sorted(options))} for {cls.__name__}; "
        f"known: {', '.join(known)}"
    )


class InstrumentSettings:
    """Mixin for drivers: declared settings, lab limits and safe state.

    A driver calls :meth:`_init_settings` in its constructor with the station's
    ``limits`` mapping (setting name -> [low, high]).
    """

    SETTINGS: tuple[Setting, ...] = ()
    label: str = "instrument"

    def _init_settings(self, label: str, limits: Mapping[str, Sequence[float]] | None) -> None:
        self.label = label
        self._lab_limits: dict[str, tuple[float, float]] = {}
        known = {s.name: s for s in self.SETTINGS}
        for key, bounds in (limits or {}).items():
            if key not in known:
                raise ConfigError(
                    f"{label}: limit '{key}' is not a setting of {type(self).__name__}; "
                    f"known settings: {', '.join(sorted(known)) or 'none'}"
                )
            try:
                if isinstance(bounds, (str, bytes)):  # "05" would iterate as 0..5
                    raise TypeError(bounds)
                lo, hi = (float(b) for b in bounds)
            except (TypeError, ValueError):
                raise ConfigError(
                    f"{label}: limit '{key}' must be [low, high], got {bounds!r}"
                ) from None
            if lo > hi:
                raise ConfigError(f"{label}: limit '{key}' has low {lo:g} > high {hi:g}")
            self._lab_limits[key] = (lo, hi)

    @classmethod
    def setting_spec(cls, name: str) -> Setting:
        for s in cls.SETTINGS:
            if s.name == name:
                return s
        known = ", ".join(sorted(x.name for x in cls.SETTINGS))
        raise UnknownSetting(f"{cls.__name__} has no setting '{name}' (it has: {known})")

    def lab_limit(self, name: str) -> tuple[float, float] | None:
        return getattr(self, "_lab_limits", {}).get(name)

    def effective_range(self, name: str) -> tuple[float, float] | None:
        """The intersection of capability range and lab limit."""
        spec = self.setting_spec(name)
        lo, hi = -math.inf, math.inf
        for bounds in (spec.range, self.lab_limit(name)):
            if bounds is not None:
                lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
        return None if (lo, hi) == (-math.inf, math.inf) else (lo, hi)

    def check(self, name: str, value: Any) -> Any:
        """Return ``value`` coerced to the setting's type, or raise :class:`LimitError`."""
        spec = self.setting_spec(name)
        unit = f" {spec.unit}" if spec.unit else ""
        try:
            value = as_bool(value) if spec.kind is bool else spec.kind(value)
        except (TypeError, ValueError):
            raise LimitError(
                f"{self.label}: {name}={value!r} is not a {spec.kind.__name__}"
                + (" (use true/false or on/off)" if spec.kind is bool else "")
            ) from None
        if spec.choices is not None and value not in spec.choices:
            choices = ", ".join(_fmt(c) for c in spec.choices)
            raise LimitError(f"{self.label}: {name}={_fmt(value)} is not one of {choices}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                raise LimitError(f"{self.label}: {name}={value} is not a finite number")
            if spec.range is not None and not spec.range[0] <= value <= spec.range[1]:
                lo, hi = spec.range
                raise LimitError(
                    f"{self.label}: {name}={_fmt(value)}{unit} is outside this "
                    f"{type(self).__name__}'s {_fmt(lo)}..{_fmt(hi)}{unit}"
                )
            lab = self.lab_limit(name)
            if lab is not None and not lab[0] <= value <= lab[1]:
                raise LimitError(
                    f"{self.label}: {name}={_fmt(value)}{unit} is outside the lab limit "
                    f"{_fmt(lab[0])}..{_fmt(lab[1])}{unit} set in the station config"
                )
        return value

    def settings_snapshot(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for spec in self.SETTINGS:
            if not spec.snapshot:
                continue
            try:
                value = getattr(self, spec.name)
            except Exception as exc:  # a snapshot must never kill a run
                value = f"<unreadable: {exc}>"
            out[spec.name] = {
                "value": value,
                "unit": spec.unit,
                "limits": self.effective_range(spec.name),
            }
        return out

    # -- what every driver provides ------------------------------------------------
    def safe_state(self) -> None:
        """Put the hardware in a state that is safe to leave unattended."""
        raise NotImplementedError

    def identity(self) -> dict[str, str]:
        """Maker, model, serial and firmware, as the instrument reports them."""
        return {}
