"""GUI test fixtures: a themed QApplication, the main window, and the fake procedures.

Runs are real ``labpnn run`` child processes, so the fixtures make sure every child
finds the test procedures (``LABPNN_EXTRA_PROCEDURES`` and ``PYTHONPATH``) and that
no child outlives its test.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FAKE_STATION = REPO / "tests" / "core" / "fake-station.yaml"
EXTRA = ",".join(
    [
        "gui-steps=tests.gui.fake_procedures:Steps",
        "gui-ask=tests.gui.fake_procedures:AskOperator",
        "gui-stuck=tests.gui.fake_procedures:Stuck",
        "count-frames=tests.core.fakes:CountFrames",
    ]
)
RUN_TIMEOUT_MS = 90_000


@pytest.fixture(autouse=True)
def gui_env(monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    monkeypatch.setenv("LABPNN_EXTRA_PROCEDURES", EXTRA)
    path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", f"{REPO}{os.pathsep}{path}" if path else str(REPO))


@pytest.fixture(scope="session")
def qapp_cls():
    from PyQt6.QtWidgets import QApplication

    return QApplication


@pytest.fixture
def make_window(qtbot, qapp):
    """Open main windows; each is shut down (and its children killed) at the end."""
    from labpnn.gui.app import make_app
    from labpnn.gui.main_window import MainWindow

    make_app()
    windows = []

    def make(station=None):
        window = MainWindow(station, confirm=False)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        process = window.controller.process
        if process is not None and process.is_running():
            process.kill()
            with contextlib.suppress(Exception):
                process.popen.wait(10)
        with contextlib.suppress(RuntimeError):
            window.shutdown()
            window.close()


def wait_run_end(qtbot, window, timeout=RUN_TIMEOUT_MS, count=1):
    """Wait until the window has finished ``count`` runs in total."""
    qtbot.waitUntil(
        lambda: len(window.controller.history) >= count and not window.controller.running,
        timeout=timeout,
    )
    return window.controller.history[-1]
