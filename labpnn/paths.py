"""Where labpnn keeps run data, machine state and its bundled files.

Run data may live on a network share (``LABPNN_DATA_DIR``); locks, the ledger and the
calibration registry must be local to the machine (``LABPNN_STATE_DIR``), because file
locks and SQLite are unreliable over network file systems.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

APP = "labpnn"


def data_dir(override: str | os.PathLike | None = None) -> Path:
    if override:
        path = Path(override)
    elif os.environ.get("LABPNN_DATA_DIR"):
        path = Path(os.environ["LABPNN_DATA_DIR"])
    else:
        import platformdirs

        path = Path(platformdirs.user_data_dir(APP)) / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def state_dir() -> Path:
    if os.environ.get("LABPNN_STATE_DIR"):
        path = Path(os.environ["LABPNN_STATE_DIR"])
    else:
        import platformdirs

        path = Path(platformdirs.user_state_dir(APP))
    path.mkdir(parents=True, exist_ok=True)
    return path


def bundled(*parts: str) -> Path:
    """A file shipped inside the ``labpnn.data`` package (works for wheels too)."""
    return Path(str(resources.files("labpnn.data").joinpath(*parts)))


def bundled_stations() -> dict[str, Path]:
    folder = bundled("stations")
    return {p.name.removesuffix(".yaml"): p for p in sorted(folder.glob("*.yaml"))}
