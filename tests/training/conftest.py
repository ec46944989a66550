"""Fixtures for the training procedures: their catalog names, direct-transport stations, the CLI.

``LABPNN_EXTRA_PROCEDURES`` pins the five procedures to this package's classes (the catalog lists
the same), so these tests exercise exactly the code in ``procedures/training``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from labpnn.paths import bundled_stations
from labpnn.storage import open_run

torch.set_num_threads(1)

TRAINING_PROCEDURES = {
    "train-phyll": "labpnn.procedures.training.phyll:TrainPhyLL",
    "train-ff": "labpnn.procedures.training.ff:TrainFF",
    "fit-twin": "labpnn.procedures.training.twin:FitTwin",
    "train-pat": "labpnn.procedures.training.pat:TrainPAT",
    "train-insilico": "labpnn.procedures.training.insilico:TrainInSilico",
}
VOWELS_CSV = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "datasets"
    / ("hillenbrand-women-7vowels.csv")
)


@pytest.fixture(autouse=True)
def training_procedures(monkeypatch, tmp_path):
    monkeypatch.setenv(
        "LABPNN_EXTRA_PROCEDURES", ",".join(f"{k}={v}" for k, v in TRAINING_PROCEDURES.items())
    )
    monkeypatch.setenv("LABPNN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LABPNN_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("LABPNN_VOWELS_CSV", raising=False)


@pytest.fixture
def direct_station(tmp_path):
    """``direct_station(kind, **simulation)``: a copy of ``<kind>-sim`` on the batched path.

    A station *file* (not ``--station-set``) so that ``labpnn resume`` finds the same station.
    """

    def make(kind: str = "acoustic", **simulation) -> str:
        raw = yaml.safe_load(bundled_stations()[f"{kind}-sim"].read_text())
        raw["bench"]["simulation"].update(transport="direct", **simulation)
        path = tmp_path / f"{kind}-direct-{len(list(tmp_path.glob('*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(raw))
        return str(path)

    return make


def run_path(result) -> str:
    """The run file a ``labpnn run`` printed as its last line."""
    return result.stdout.strip().splitlines()[-1]


def summary(path: str) -> dict:
    with open_run(path) as f:
        return {k: (v.item() if hasattr(v, "item") else v) for k, v in f["summary"].attrs.items()}


def results(path: str) -> dict:
    with open_run(path) as f:
        return {k: f["results"][k][()] for k in f["results"]}


def checkpoint_meta(path: str) -> dict | None:
    try:
        with open_run(path) as f:
            if "checkpoints/latest" not in f:
                return None
            return json.loads(f["checkpoints/latest"].attrs["meta"])
    except Exception:  # a file being restructured: try again later
        return None
