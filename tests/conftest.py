"""Every test gets its own data and state directories, one BLAS thread and offscreen Qt."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(autouse=True)
def lab_dirs(tmp_path, monkeypatch):
    """Fresh ``LABPNN_DATA_DIR`` and ``LABPNN_STATE_DIR`` for each test."""
    data = tmp_path / "data"
    state = tmp_path / "state"
    data.mkdir()
    state.mkdir()
    monkeypatch.setenv("LABPNN_DATA_DIR", str(data))
    monkeypatch.setenv("LABPNN_STATE_DIR", str(state))
    return data, state


def labpnn_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "labpnn.cli", *args]


def run_labpnn(*args: str, timeout: float = 120, check: bool = False, **kw):
    """Run the real CLI in a subprocess, with the test's directories."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.update(kw.pop("env", {}))
    result = subprocess.run(
        labpnn_cmd(*args), capture_output=True, text=True, timeout=timeout, env=env, **kw
    )
    if check and result.returncode != 0:
        raise AssertionError(f"labpnn {' '.join(args)} -> {result.returncode}\n{result.stderr}")
    return result


@pytest.fixture
def labpnn():
    return run_labpnn
