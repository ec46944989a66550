"""The training study's reduced mode: what a few minutes on the simulated benches can show."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_reduced_study_learns_every_task_well_above_chance(tmp_path):
    res = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "study_training.py"),
            "--mode",
            "reduced",
            "--out",
            str(tmp_path),
            "--workers",
            "2",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    # (its duration, about a minute here, is reported in the README it writes, not asserted)
    headline = json.loads((tmp_path / "headline.json").read_text())
    chance = {"vowels": 1 / 7, "digits": 1 / 10}
    floors = {
        "S4:acoustic": 5 * chance["vowels"],  # PhyLL, acoustic: measured 0.9-1.0 in 20 epochs
        "S4:identity, skip": 4 * chance["vowels"],
        "S5:microwave": 2 * chance["vowels"],  # 3 epochs only: measured about 0.5
        "S6:optical, static medium": 5 * chance["digits"],  # 2 epochs: measured about 0.9
        "S7:pat": 4 * chance["vowels"],
        "FF:forward-forward": 3 * chance["digits"],
    }
    for key, floor in floors.items():
        assert headline[key]["mean"] > floor, (key, headline[key])
    # the drift reaches the bench: a frozen PhyLL falls towards chance (measured: 87 points lost)
    assert headline["S9:h=1:PhyLL, frozen:loss"]["mean"] > 0.4
    # when the medium changes once per epoch instead of continuously, online PhyLL has an epoch
    # on each medium to adapt and is scored on it (measured: 9 points lost against 60
    # continuously, and 78 for the frozen copy)
    stepped = "S9:drift, per-epoch steps:h=1"
    online = headline[f"{stepped}:PhyLL, online, re-centred:loss"]["mean"]
    assert online < headline[f"{stepped}:PhyLL, frozen:loss"]["mean"] - 0.3
    assert online < headline["S9:h=1:PhyLL, online, re-centred:loss"]["mean"] - 0.2
    report = (tmp_path / "README.md").read_text()
    sections = ("S8: cost to reach the plateau", "## S9: drift\n", "S9: drift, per-epoch steps",
                "| S7 | insilico |")  # fmt: skip
    for section in sections:
        assert section in report
    for png in ("accuracy.png", "methods.png", "ablations.png", "drift.png"):
        assert (tmp_path / png).stat().st_size > 10_000, png
