"""Names of the procedures the CLI, GUI and scheduler can run, imported on demand."""

from __future__ import annotations

import importlib
import os
from typing import Any

from labpnn.errors import BadInput, did_you_mean

PROCEDURES: dict[str, str] = {
    "calibrate-camera": "labpnn.procedures.calibration.camera:CalibrateCamera",
    "calibrate-tm": "labpnn.procedures.calibration.tm:CalibrateTM",
    "validate-focus": "labpnn.procedures.calibration.focus:ValidateFocus",
    "calibrate-audio": "labpnn.procedures.calibration.audio:CalibrateAudio",
    "calibrate-vna": "labpnn.procedures.calibration.vna:CalibrateVNA",
    "map-metasurface": "labpnn.procedures.calibration.metasurface:MapMetasurface",
    "train-phyll": "labpnn.procedures.training.phyll:TrainPhyLL",
    "train-ff": "labpnn.procedures.training.ff:TrainFF",
    "fit-twin": "labpnn.procedures.training.twin:FitTwin",
    "train-pat": "labpnn.procedures.training.pat:TrainPAT",
    "train-insilico": "labpnn.procedures.training.insilico:TrainInSilico",
    "control-tm": "labpnn.procedures.control.tm:ControlTM",
    "control-actor": "labpnn.procedures.control.actor:ControlActor",
    "control-vae": "labpnn.procedures.control.vae:ControlVAE",
}


def _catalog() -> dict[str, str]:
    """The built-in procedures plus a lab's own, from ``LABPNN_EXTRA_PROCEDURES``.

    The variable holds ``name=module:Class`` pairs separated by commas, so a lab can
    run its own procedures through the same runner, GUI and scheduler.
    """
    extra = {}
    for item in filter(None, os.environ.get("LABPNN_EXTRA_PROCEDURES", "").split(",")):
        name, sep, target = item.partition("=")
        if sep and ":" in target:
            extra[name.strip()] = target.strip()
    return {**PROCEDURES, **extra}


def procedure_class(name: str) -> type[Any]:
    catalog = _catalog()
    try:
        target = catalog[name]
    except KeyError:
        raise BadInput(
            f"unknown procedure '{name}'{did_you_mean([name], catalog)} "
            f"(known: {', '.join(sorted(catalog))})"
        ) from None
    module, _, cls_name = target.partition(":")
    return getattr(importlib.import_module(module), cls_name)


def all_procedures() -> dict[str, type[Any]]:
    return {name: procedure_class(name) for name in sorted(_catalog())}
