"""Station snapshot as a qcodes ``Station``: each driver setting becomes a qcodes parameter.

The parameters are generated from the drivers' :class:`~labpnn.settings.Setting`
declarations, so the unit and limits are written once. Setting a parameter calls the
driver's own setter, where the limits are enforced.
"""

from __future__ import annotations

import itertools
from typing import Any

_counter = itertools.count()


def qcodes_component(role: str, driver: Any):
    """A qcodes InstrumentBase mirroring one driver's declared settings."""
    import qcodes.validators as vals
    from qcodes.instrument import InstrumentBase

    class _Mirror(InstrumentBase):
        pass

    component = _Mirror(role)
    for spec in getattr(driver, "SETTINGS", ()):
        if not spec.snapshot:
            continue
        validator = None
        bounds = driver.effective_range(spec.name)
        if spec.choices is not None:
            validator = vals.Enum(*spec.choices)
        elif spec.kind is bool:
            validator = vals.Bool()
        elif spec.kind is int:
            validator = vals.Ints(*(int(b) for b in bounds)) if bounds else vals.Ints()
        elif spec.kind is float:
            validator = vals.Numbers(*bounds) if bounds else vals.Numbers()

        def getter(name=spec.name):
            return getattr(driver, name)

        def setter(value, name=spec.name):
            setattr(driver, name, value)

        component.add_parameter(
            spec.name,
            unit=spec.unit,
            docstring=spec.doc or None,
            vals=validator,
            get_cmd=getter,
            set_cmd=setter if spec.settable else False,
        )
    return component


def build_snapshot(station: Any) -> dict[str, Any]:
    from qcodes.station import Station as QStation

    qstation = QStation()
    for role, driver in station.instruments.items():
        try:
            qstation.add_component(qcodes_component(role, driver))
        except Exception as exc:  # a broken instrument must not hide the others
            qstation.metadata.setdefault("errors", {})[role] = str(exc)
    snap = qstation.snapshot(update=True)
    snap["labpnn"] = {
        "station": station.name,
        "bench": {
            "kind": station.bench.kind,
            "layout": station.bench.layout,
            "simulation": station.bench.simulation if station.simulated else None,
            "layout_hash": station.bench.layout_hash(),
        },
        "instruments": {
            role: {
                "driver": inst.driver,
                "simulated": inst.simulated,
                "options": inst.options,
                "limits": inst.limits,
            }
            for role, inst in station.config.instruments.items()
        },
    }
    return snap
