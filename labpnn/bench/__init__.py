"""Benches as PhysicalLayers: encode -> actuate -> settle -> sense -> decode.

Learning code sees only the :class:`~labpnn.physical.PhysicalLayer` interface; this
package turns a connected station into one. A simulated station configured with
``simulation.transport: direct`` is measured through its world's batched path instead
of the drivers (for long studies); both give the same outputs for the same seed.
"""

from __future__ import annotations

import importlib
import math
from typing import Any

from labpnn.errors import ConfigError, did_you_mean

BENCHES = {
    "optical": "labpnn.bench.optical:OpticalBench",
    "acoustic": "labpnn.bench.acoustic:AcousticBench",
    "microwave": "labpnn.bench.microwave:MicrowaveBench",
}


POSITIVE = 1e-300  # "> 0" in the table below

# What each bench reads from ``bench.layout``: key -> (type, smallest value). A layout is
# checked before a station connects, so a misspelt key never silently runs with the default.
_LAYOUT: dict[str, dict[str, tuple[str, float | None]]] = {
    "acoustic": {  # labpnn.excitation.MultitonePlan.from_layout
        "samplerate": ("int", 1),
        "tones_hz": ("numbers", POSITIVE),
        "n_tones": ("int", 1),
        "f_min_hz": ("number", POSITIVE),
        "f_max_hz": ("number", POSITIVE),
        "spacing": ("linear|log", None),
        "duration_s": ("number", POSITIVE),
        "settle_s": ("number", 0),
        "fade_s": ("number", 0),
    },
    "microwave": {  # labpnn.bench.microwave, the VNA calibration and the simulated world
        "n_bits": ("int", 1),
        "bits_per_feature": ("int", 1),
        "n_features": ("int", 1),
        "settle_s": ("number", 0),
        "vna": ("mapping", None),
        "frequencies_hz": ("numbers", POSITIVE),
        "n_outputs": ("int", 1),
        "cal_kit": ("mapping", None),
    },
    "optical": {  # labpnn.bench.macropixels and labpnn.bench.optical
        "macropixels": ("int or pair", 1),
        "macropixel_px": ("int or null", 0),
        "reference_border": ("int or null", 0),
        "camera_roi": ("4 ints", 0),
        "pool": ("pool", None),
    },
}
_VNA_KEYS = {"start_hz", "stop_hz", "points", "ifbw_hz", "power_dbm"}
# Every bench may name its layout (e.g. which fibre is mounted): the name is part of the
# layout hash, so calibrations of two mounted samples never satisfy each other.
for _keys in _LAYOUT.values():
    _keys["name"] = ("text", None)


def layout_keys(kind: str) -> tuple[str, ...]:
    """The ``bench.layout`` keys a bench kind understands (empty for unknown kinds)."""
    return tuple(sorted(_LAYOUT.get(kind, {})))


def check_layout(kind: str, layout: Any) -> None:
    """Refuse a ``bench.layout`` with unknown keys or values of the wrong type or range.

    Benches of kinds labpnn does not know (test fakes, a lab's own) are not checked. Raises
    :class:`ConfigError` naming the key and what it accepts.
    """
    schema = _LAYOUT.get(kind)
    if schema is None or layout is None:
        return
    if not isinstance(layout, dict):
        raise ConfigError(f"bench.layout must be a mapping of settings, got {layout!r}")
    unknown = sorted(set(map(str, layout)) - set(schema))
    if unknown:
        raise ConfigError(
            f"bench.layout: unknown key(s) {', '.join(unknown)}{did_you_mean(unknown, schema)} "
            f"for the {kind} bench; known: {', '.join(sorted(schema))}"
        )
    for key, value in layout.items():
        kind_of, low = schema[key]
        _check_value(f"bench.layout.{key}", value, kind_of, low)
    vna = layout.get("vna") or {}
    bad = sorted(set(map(str, vna)) - _VNA_KEYS)
    if bad:
        raise ConfigError(
            f"bench.layout.vna: unknown key(s) {', '.join(bad)}; known: {', '.join(sorted(_VNA_KEYS))}"
        )
    for key, value in vna.items():
        if key == "power_dbm":
            _check_value(f"bench.layout.vna.{key}", value, "number", None)
        else:
            integer = key == "points"
            _check_value(
                f"bench.layout.vna.{key}", value, "int" if integer else "number",
                1 if integer else POSITIVE,
            )  # fmt: skip
    if "start_hz" in vna or "stop_hz" in vna:
        from labpnn.bench.microwave import DEFAULT_SWEEP

        start = float(vna.get("start_hz", DEFAULT_SWEEP["start_hz"]))
        stop = float(vna.get("stop_hz", DEFAULT_SWEEP["stop_hz"]))
        if not start < stop:
            raise ConfigError(
                f"bench.layout.vna: start_hz ({start:g}) must be below stop_hz ({stop:g})"
            )


def _number(name: str, value: Any, integer: bool, low: float | None) -> float:
    what = "an integer" if integer else "a number"
    bound = "" if low is None else " > 0" if low == POSITIVE else f" >= {low:g}"
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
        if integer and (not math.isfinite(number) or number != int(number)):
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be {what}{bound}, got {value!r}") from None
    if not math.isfinite(number) or (low is not None and number < low):
        raise ConfigError(f"{name} must be {what}{bound}, got {value!r}")
    return number


def _check_value(name: str, value: Any, kind_of: str, low: float | None) -> None:
    if kind_of in ("int", "number"):
        _number(name, value, kind_of == "int", low)
    elif kind_of == "int or null":
        if value is not None:
            _number(name, value, True, low)
    elif kind_of == "numbers":
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(f"{name} must be a list of numbers, got {value!r}")
        for item in value:
            _number(name, item, False, low)
    elif kind_of == "int or pair":
        items = value if isinstance(value, (list, tuple)) else [value]
        if len(items) not in (1, 2) or (len(items) == 1 and isinstance(value, (list, tuple))):
            raise ConfigError(f"{name} must be an integer or [rows, columns], got {value!r}")
        for item in items:
            _number(name, item, True, low)
    elif kind_of == "4 ints":
        if not isinstance(value, (list, tuple)) or len(value) != 4:
            raise ConfigError(f"{name} must be [x, y, width, height] in pixels, got {value!r}")
        for item in value:
            _number(name, item, True, low)
    elif kind_of == "text":
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be text, got {value!r}")
    elif kind_of == "mapping":
        if value is not None and not isinstance(value, dict):
            raise ConfigError(f"{name} must be a mapping, got {value!r}")
    elif kind_of == "pool":
        if isinstance(value, dict):
            bad = sorted(set(map(str, value)) - {"kernel", "stride", "padding"})
            if bad:
                raise ConfigError(
                    f"{name}: unknown key(s) {', '.join(bad)}; known: kernel, padding, stride"
                )
            for key, item in value.items():
                _number(f"{name}.{key}", item, True, 0 if key == "padding" else 1)
        elif value is not None:
            _number(name, value, True, 1)
    else:  # a choice such as "linear|log"
        choices = kind_of.split("|")
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def make_bench(station: Any, **options: Any) -> Any:
    """The PhysicalLayer for a connected station's bench."""
    try:
        target = BENCHES[station.bench.kind]
    except KeyError:
        raise ConfigError(f"no PhysicalLayer for bench kind '{station.bench.kind}'") from None
    check_layout(station.bench.kind, station.bench.layout)
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)(station, **options)


def __getattr__(name: str) -> Any:
    # Re-export the torch-only protocol lazily, so importing labpnn.bench stays cheap.
    if name in {"PhysicalLayer", "FunctionLayer"}:
        return getattr(importlib.import_module("labpnn.physical"), name)
    raise AttributeError(name)
