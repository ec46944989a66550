"""calibrate-tm on optical-sim, launched from the GUI form as an operator would.

The two acceptance checks of the GUI issue that need the real procedure: the live
camera dock updates during a run, and an aborted run ends ``aborted`` with every
instrument's safe state recorded in its file.
"""

from __future__ import annotations

import h5py

from labpnn.ledger import Ledger

from .conftest import wait_run_end


def launch_tm(window, n_modes: int, chunk: int = 64) -> None:
    window.launcher.select("calibrate-tm")
    window.launcher.form.set_text("n_modes", str(n_modes))
    window.launcher.form.set_text("chunk", str(chunk))
    window.launcher.form.set_text("n_holdout", "2")
    assert window.launcher.form.errors() == {}
    assert window.run_from_launcher()


def test_calibrate_tm_from_the_form_updates_the_live_camera_dock(make_window, qtbot):
    window = make_window("optical-sim")
    assert window.station_panel.config.simulated
    launch_tm(window, 64)
    qtbot.waitUntil(lambda: window.camera.frames_shown >= 3, timeout=90_000)
    header = window.camera.last_header
    assert header["run_id"] == window.controller.run_id
    assert window.camera.image.image is not None and window.camera.image.image.ndim == 2
    procedure, status, path = wait_run_end(qtbot, window)
    assert (procedure, status) == ("calibrate-tm", "completed")
    assert window.slm.patterns_shown >= 1, "the SLM dock never showed a presented pattern"
    with h5py.File(path, "r") as f:
        assert f.attrs["started_by"] == "gui"
        assert f["frames/camera"].shape[0] >= 64
        assert f["summary"].attrs["pearson"] > 0.9


def test_an_aborted_calibration_ends_aborted_with_every_instrument_safe(make_window, qtbot):
    window = make_window("optical-sim")
    launch_tm(window, 256, chunk=4)  # checks for a stop every 4 frames
    qtbot.waitUntil(lambda: window.camera.frames_shown >= 3, timeout=90_000)
    run_id = window.controller.run_id
    assert window.abort_run(confirm=False)
    _, status, path = wait_run_end(qtbot, window, timeout=60_000)
    assert status == "aborted"
    ledger = Ledger()
    try:
        assert ledger.run(run_id)["status"] == "aborted"
    finally:
        ledger.close()
    with h5py.File(path, "r") as f:
        assert f.attrs["status"] == "aborted"
        safe = dict(f["safe_state"].attrs)
    assert bool(safe.pop("all_safe"))
    assert safe == {"slm": "ok", "camera": "ok"}
    assert not any("killing it" in line for line in window.log_view.lines), (
        "the run needed the kill + safe-off fallback instead of stopping by itself"
    )
