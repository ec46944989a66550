"""Names of the procedures the CLI, GUI and scheduler can run, imported on demand."""

from __future__ import annotations

import importlib
from typing import Any

from labpnn.errors import BadInput

PROCEDURES: dict[str, str] = {
    "calibrate-camera": "labpnn.procedures.calibration.camera:CalibrateCamera",
    "calibrate-tm": "labpnn.procedures.calibration.tm:CalibrateTM",
    "validate-focus": "labpnn.procedures.calibration.focus:ValidateFocus",
}


def procedure_class(name: str) -> type[Any]:
    try:
        target = PROCEDURES[name]
    except KeyError:
        raise BadInput(
            f"unknown procedure '{name}' (known: {', '.join(sorted(PROCEDURES))})"
        ) from None
    module, _, cls_name = target.partition(":")
    return getattr(importlib.import_module(module), cls_name)


def all_procedures() -> dict[str, type[Any]]:
    return {name: procedure_class(name) for name in sorted(PROCEDURES)}
