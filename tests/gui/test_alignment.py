"""Alignment outside runs on optical-sim: live camera, SLM test patterns, manual settings
within the lab limits, and the instrument locks that keep runs and the GUI apart."""

from __future__ import annotations

import numpy as np

from labpnn.gui import patterns
from labpnn.gui.settings_panel import ROLE_DATA

from .conftest import wait_run_end


def settings_item(window, role, name):
    tree = window.settings_panel.tree
    for i in range(tree.topLevelItemCount()):
        top = tree.topLevelItem(i)
        for j in range(top.childCount()):
            item = top.child(j)
            if item.data(0, ROLE_DATA) == (role, name):
                return item
    raise KeyError(f"{role}.{name} not in the settings panel")


def test_live_camera_test_patterns_and_limits_while_the_gui_holds_the_bench(
    make_window, qtbot, labpnn
):
    window = make_window("optical-sim")
    assert window.station_panel.connect_station()
    assert window.camera.live_button.isEnabled() and window.slm.show_button.isEnabled()
    window.slm.kind.setCurrentText("checkerboard")
    window.slm.show_button.click()
    assert window.slm.patterns_shown == 1
    window.camera.live_button.setChecked(True)
    qtbot.waitUntil(lambda: window.camera.frames_shown >= 3, timeout=30_000)
    window.camera.live_button.setChecked(False)

    item = settings_item(window, "camera", "exposure_s")
    item.setText(1, "0.005")
    assert window.session.get_setting("camera", "exposure_s") == 0.005
    item.setText(1, "0.5")  # above the station's lab limit of 0.1 s
    assert "outside the lab limit 1e-05..0.1 s" in window.settings_panel.status.text()
    assert window.session.get_setting("camera", "exposure_s") == 0.005
    assert item.text(1) == "0.005"

    # the GUI holds the locks: a run from a terminal finds the bench busy
    out = labpnn("run", "calibrate-tm", "--station", "optical-sim", "--set", "n_modes=16")
    assert out.returncode == 3, out.stderr
    assert "bench busy" in out.stderr

    # a run from the GUI releases the bench first (safe state), then runs
    window.launcher.select("calibrate-tm")
    window.launcher.form.set_text("n_modes", "16")
    window.launcher.form.set_text("n_holdout", "0")
    assert window.run_from_launcher()
    assert not window.session.connected
    assert not window.camera.live_button.isEnabled()
    _, status, _ = wait_run_end(qtbot, window)
    assert status == "completed"
    assert any("released the bench for the run" in line for line in window.log_view.lines)


def test_test_patterns_are_phase_images_in_range():
    for name in patterns.PATTERNS:
        phase = patterns.make(name, (64, 80), 8, np.pi, 30)
        assert phase.shape == (64, 80)
        assert 0 <= phase.min() and phase.max() < 2 * np.pi
    grey = patterns.to_grey(patterns.grating((4, 8), period_px=8))
    assert grey.dtype == np.uint8 and list(grey[0]) == [0, 32, 64, 96, 128, 160, 192, 224]


def test_live_vna_trace_on_the_microwave_bench(make_window, qtbot):
    window = make_window("microwave-sim")
    assert not window.camera_dock.isVisibleTo(window)  # no camera on this bench
    assert window.station_panel.connect_station()
    assert window.trace.live_button.isEnabled()
    window.trace.live_button.setChecked(True)
    qtbot.waitUntil(lambda: window.trace.traces_shown >= 2, timeout=30_000)
    window.trace.live_button.setChecked(False)
    assert window.trace.caption.text().startswith("S21:")
    x, y = window.trace.curve.getData()
    assert x[0] > 1e8 and np.all(np.isfinite(y))  # Hz axis, |S21| in dB
