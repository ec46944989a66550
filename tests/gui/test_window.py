"""The main window as an experimentalist uses it: forms, queue, browser, prompts, pause,
bad station files and stuck runs. Runs are real ``labpnn run`` child processes on the
fake bench (tests/core/fake-station.yaml)."""

from __future__ import annotations

import json

import h5py

from labpnn.ledger import Ledger
from labpnn.queue import RunQueue

from .conftest import FAKE_STATION, wait_run_end


def choose(window, procedure, **params):
    window.launcher.select(procedure)
    for key, value in params.items():
        window.launcher.form.set_text(key, str(value))
    assert window.launcher.form.errors() == {}


def ledger_row(run_id):
    ledger = Ledger()
    try:
        return ledger.run(run_id)
    finally:
        ledger.close()


def test_the_form_refuses_an_out_of_range_value_and_says_why(make_window):
    window = make_window(str(FAKE_STATION))
    window.launcher.select("count-frames")
    form = window.launcher.form
    form.set_text("n_frames", "0")
    assert form.errors()["n_frames"] == "n_frames=0 is below the minimum 1"
    assert form.error_labels["n_frames"].text() == "n_frames=0 is below the minimum 1"
    assert not window.launcher.run_button.isEnabled()
    assert not window.run_from_launcher()
    form.set_text("delay_s", "12")
    assert "above the maximum 10 s" in form.errors()["delay_s"]
    form.set_text("n_frames", "three")
    assert form.errors()["n_frames"] == "n_frames='three' is not a number"
    form.set_text("n_frames", "3")
    form.set_text("delay_s", "0")
    assert form.is_valid() and window.launcher.run_button.isEnabled()


def test_a_malformed_station_file_shows_a_readable_message_and_the_gui_stays_usable(
    make_window, tmp_path
):
    bad = tmp_path / "broken.yaml"
    bad.write_text("instruments:\n  camera: {driver: x.Y\n  slm: [\n")
    window = make_window()
    assert not window.station_panel.open_station(str(bad))
    banner = window.station_panel.banner
    assert banner.isVisible()
    assert "malformed YAML at line" in banner.text()
    assert "Traceback" not in banner.text()
    unknown = tmp_path / "unknown-driver.yaml"
    unknown.write_text(
        "instruments:\n  camera: {driver: labpnn.drivers.nope.Camera}\nbench: {kind: fake}\n"
    )
    assert not window.station_panel.open_station(str(unknown))
    assert "unknown driver class 'labpnn.drivers.nope.Camera'" in banner.text()
    # still usable: a good station loads and can be launched on
    assert window.station_panel.open_station(str(FAKE_STATION))
    assert not banner.isVisible()
    choose(window, "count-frames", n_frames=2)
    assert window.launcher.run_button.isEnabled()


def test_two_queued_runs_run_in_order(make_window, qtbot):
    window = make_window(str(FAKE_STATION))
    choose(window, "gui-steps", n_steps=3, delay_s=0)
    window.launcher.note.setText("first")
    assert window.queue_from_launcher()
    choose(window, "count-frames", n_frames=2)
    window.launcher.note.setText("second")
    assert window.queue_from_launcher()
    assert [e.note for e in window.queue_panel.queued()] == ["first", "second"]
    window.queue_panel.run_button.click()
    wait_run_end(qtbot, window, count=2)
    qtbot.waitUntil(lambda: not window.controller.processing, timeout=10_000)
    assert [h[:2] for h in window.controller.history] == [
        ("gui-steps", "completed"),
        ("count-frames", "completed"),
    ]
    with RunQueue() as q:
        done = list(reversed(q.history()))
        assert [(e.note, e.state) for e in done] == [
            ("first", "completed"),
            ("second", "completed"),
        ]
        rows = [q.ledger.run(e.run_id) for e in done]
    assert rows[0]["end_time"] <= rows[1]["start_time"]
    assert {r["started_by"] for r in rows} == {"gui"}


def test_the_queue_is_still_there_after_closing_and_reopening_the_window(make_window):
    window = make_window(str(FAKE_STATION))
    choose(window, "count-frames", n_frames=7)
    window.queue_from_launcher()
    choose(window, "gui-steps", n_steps=2)
    window.queue_from_launcher()
    window.close()
    again = make_window(str(FAKE_STATION))
    queued = again.queue_panel.queued()
    assert [e.procedure for e in queued] == ["count-frames", "gui-steps"]
    # every value of the form is pinned, so a later change of defaults cannot alter it
    assert queued[0].parameters == {"n_frames": 7, "delay_s": 0.0, "exposure_s": 0.01}
    assert queued[1].parameters["n_steps"] == 2
    assert again.queue_panel.table.rowCount() == 2
    assert again.queue_panel.table.item(0, 2).text() == "n_frames=7"  # only what changed


def test_a_finished_run_opens_in_the_browser_with_parameters_summary_and_curves(make_window, qtbot):
    window = make_window(str(FAKE_STATION))
    choose(window, "gui-steps", n_steps=6, delay_s=0)
    assert window.run_from_launcher()
    procedure, status, path = wait_run_end(qtbot, window)
    assert status == "completed"
    window.tabs.setCurrentWidget(window.browser)
    assert window.browser.refresh() == 1
    assert window.browser.table.item(0, 3).text() == "completed"
    infos = window.browser.open_runs([path])
    assert infos[0].parameters["n_steps"] == 6
    assert infos[0].summary["queries"] == 6
    text = " ".join(
        window.browser.details.topLevelItem(0).child(i).text(0)
        for i in range(window.browser.details.topLevelItem(0).childCount())
    )
    assert "parameters" in text and "summary" in text
    assert set(window.browser.curves._curves) == {("", "accuracy"), ("", "loss")}
    # two runs compare: the second one's curves are added, dashed
    choose(window, "gui-steps", n_steps=4, delay_s=0)
    window.run_from_launcher()
    _, _, second = wait_run_end(qtbot, window, count=2)
    window.browser.refresh()
    window.browser.open_runs([path, second])
    assert ("2", "loss") in window.browser.curves._curves


def test_the_live_docks_follow_a_run_and_flag_saturated_pixels(make_window, qtbot):
    window = make_window(str(FAKE_STATION))
    choose(window, "gui-steps", n_steps=30, delay_s=0.05)
    assert window.run_from_launcher()
    qtbot.waitUntil(lambda: window.camera.frames_shown >= 3, timeout=60_000)
    assert window.camera.last_header["saturated"] == 4
    assert window.camera.saturation.isVisible()
    qtbot.waitUntil(lambda: window.curves.updates >= 1, timeout=30_000)
    wait_run_end(qtbot, window)
    assert window.curves._curves[("", "loss")].getData()[0][-1] == 29  # x is the epoch


def test_an_operator_request_appears_as_a_dialog_and_the_answer_reaches_the_run(make_window, qtbot):
    window = make_window(str(FAKE_STATION))
    choose(window, "gui-ask")
    window.run_from_launcher()
    qtbot.waitUntil(lambda: bool(window.controller.dialogs), timeout=60_000)
    dialog = window.controller.dialogs[0]
    assert dialog.request["standard"] == "short" and dialog.request["port"] == 1
    assert dialog.prompt.text() == "<h3>Connect the SHORT standard to port 1.</h3>"
    assert dialog.isVisible() and not dialog.isModal()
    dialog.answer(True, True)
    _, status, path = wait_run_end(qtbot, window)
    assert status == "completed"
    with h5py.File(path, "r") as f:
        assert f["summary"].attrs["answered_by"] == "gui"


def test_pause_holds_the_run_and_resume_lets_it_finish(make_window, qtbot):
    window = make_window(str(FAKE_STATION))
    choose(window, "gui-steps", n_steps=40, delay_s=0.05)
    window.run_from_launcher()
    qtbot.waitUntil(
        lambda: bool(window.controller.run_id) and window.camera.frames_shown >= 2, timeout=60_000
    )
    assert window.pause_button.isEnabled()
    window.pause_button.setChecked(True)
    qtbot.wait(1500)  # the current step finishes, then the run holds
    before = ledger_row(window.controller.run_id)["progress"]
    qtbot.wait(1500)
    assert ledger_row(window.controller.run_id)["progress"] == before < 1.0
    window.pause_button.setChecked(False)
    _, status, path = wait_run_end(qtbot, window)
    assert status == "completed"
    with h5py.File(path, "r") as f:
        messages = [m.decode() for m in f["log"]["message"]]
    assert any("paused by the operator" in m for m in messages)


def test_a_procedure_without_pause_support_cannot_be_paused(make_window, qtbot):
    window = make_window(str(FAKE_STATION))
    choose(window, "count-frames", n_frames=100, delay_s=0.05)
    window.run_from_launcher()
    qtbot.waitUntil(lambda: window.controller.running, timeout=10_000)
    assert not window.pause_button.isEnabled()
    assert "cannot be paused" in window.pause_button.toolTip()
    window.abort_run(confirm=False)
    wait_run_end(qtbot, window)


def test_a_run_stuck_in_an_instrument_call_is_killed_and_the_station_made_safe(make_window, qtbot):
    window = make_window(str(FAKE_STATION))
    choose(window, "gui-stuck", seconds=60)
    window.run_from_launcher()
    # wait until it is inside the blocking call (its first row is in the file)
    qtbot.waitUntil(lambda: "step" in window.controller.watcher.data, timeout=60_000)
    run_id = window.controller.run_id
    assert window.abort_run(confirm=False)
    _, status, _ = wait_run_end(qtbot, window, timeout=60_000)
    assert status == "crashed", window.log_view.lines
    assert any("safe-off finished" in line for line in window.log_view.lines)
    assert any("detector: ok" in line for line in window.log_view.lines)
    assert ledger_row(run_id)["status"] == "crashed"


def test_parameters_of_a_past_run_load_into_the_form(make_window, qtbot):
    window = make_window(str(FAKE_STATION))
    choose(window, "count-frames", n_frames=3, delay_s=0)
    window.run_from_launcher()
    _, _, path = wait_run_end(qtbot, window)
    window.browser.refresh()
    window.browser.open_runs([path])
    window.launcher.select("gui-steps")
    window.browser.rerun.click()
    assert window.launcher.combo.currentText() == "count-frames"
    assert window.launcher.form.values()["n_frames"] == 3
    assert json.loads(json.dumps(window.launcher.form.values()))  # plain values


def test_a_missing_device_shows_which_and_why_and_frees_the_bench(make_window, tmp_path):
    station = tmp_path / "unplugged.yaml"
    station.write_text(
        "name: unplugged\ninstruments:\n"
        "  detector: {driver: tests.gui.fake_procedures.MissingDetector, serial: '999'}\n"
        "bench: {kind: fake}\n"
    )
    window = make_window(str(station))
    assert not window.station_panel.connect_station()
    banner = window.station_panel.banner.text()
    assert "no detector with serial 999 answers; check its cable and power" in banner
    assert "Traceback" not in banner
    assert window.station_panel.table.item(0, 0).toolTip().startswith("detector:")
    assert not window.session.connected
    # the failed connection left no lock behind: the GUI can connect the fake bench
    assert window.station_panel.open_station(str(FAKE_STATION))
    assert window.station_panel.connect_station()
    window.session.disconnect_station()


def test_a_run_killed_from_outside_gets_safe_off_and_the_station_stays_put(make_window, qtbot):
    import os
    import signal

    window = make_window(str(FAKE_STATION))
    choose(window, "gui-steps", n_steps=400, delay_s=0.05)
    assert window.run_from_launcher()
    qtbot.waitUntil(lambda: "epoch" in window.controller.watcher.data, timeout=60_000)
    # while the run goes, the window keeps describing its bench
    assert not window.station_panel.picker.isEnabled()
    assert not window.station_panel.open_button.isEnabled()
    assert not window.station_panel.open_station("acoustic-sim")
    assert window.station_panel.config.name == "fake-bench"
    os.kill(window.controller.process.pid, signal.SIGKILL)  # the OOM killer, say
    _, status, _ = wait_run_end(qtbot, window, timeout=60_000)
    assert status == "crashed"
    assert any("died" in line and "safe-off" in line for line in window.log_view.lines)
    assert any("safe-off finished" in line for line in window.log_view.lines)
    assert window.station_panel.picker.isEnabled()


def test_the_launcher_refuses_what_the_run_would_refuse_at_its_start(make_window, tmp_path):
    window = make_window("optical-sim")
    window.launcher.select("calibrate-tm")
    window.launcher.form.set_text("n_modes", "4096")  # in range, but does not tile the SLM
    assert window.launcher.form.errors() == {}
    assert not window.run_from_launcher()
    assert not window.controller.running
    assert "n_modes=4096 does not tile the 16x16 macropixels" in window.launcher.problem.text()
    assert window.launcher.problem.isVisible()


def test_the_reason_a_run_failed_stays_in_the_status_bar_after_it_ends(make_window):
    window = make_window(str(FAKE_STATION))
    window._set_running(True, window.launcher.spec() or type("S", (), {"procedure": "p"})())
    window.say("warning", "gui-steps: failed: the detector vanished")  # as the controller does
    window._run_ended("failed", "")
    assert "the detector vanished" in window.statusBar().currentMessage()


def test_a_run_from_the_launcher_becomes_a_nightly_schedule_edited_and_removed(make_window):
    from labpnn.schedules import list_schedules

    window = make_window("optical-sim")
    window.launcher.select("calibrate-tm")
    window.launcher.form.set_text("n_modes", "64")
    assert window.launcher.request(window.launcher.schedule_requested)
    dialog = window.schedule_dialog
    dialog.cron.setText("0 2 31 2 *")  # 31 February: never
    dialog.accept()
    assert "never fires" in dialog.error.text() and dialog.created is None
    dialog.cron.setText("0 2 * * *")
    dialog.max_runtime.setText("1.5")
    dialog.accept()
    assert dialog.created is not None
    ledger = Ledger()
    try:
        (sched,) = list_schedules(ledger)
    finally:
        ledger.close()
    assert sched.parameters["n_modes"] == "64" and sched.max_runtime_s == 5400
    panel = window.schedules_panel
    assert panel.table.rowCount() == 1 and panel.table.item(0, 3).text() == "never fired"
    panel.table.selectRow(0)
    edit = panel.edit_selected()
    assert edit.name.isReadOnly() and edit.max_runtime.text() == "1.5"
    edit.cron.setText("0 2 * *")
    edit.accept()
    assert "invalid cron expression" in edit.error.text()
    edit.cron.setText("15 3 * * 6")
    edit.max_runtime.setText("")
    edit.accept()
    assert panel.table.item(0, 1).text() == "15 3 * * 6"
    ledger = Ledger()
    try:
        (sched,) = list_schedules(ledger)
    finally:
        ledger.close()
    assert sched.cron == "15 3 * * 6" and sched.max_runtime_s is None
    assert sched.parameters["n_modes"] == "64"
    panel.table.selectRow(0)
    panel.remove_selected()
    assert panel.table.rowCount() == 0


def test_the_scheduler_sees_an_open_window_and_leaves_the_queue_to_it(make_window):
    from labpnn.scheduler import Scheduler

    scheduler = Scheduler(notifier=None)
    try:
        assert not scheduler.gui_is_open()
        window = make_window(str(FAKE_STATION))
        assert scheduler.gui_is_open()
        window.shutdown()
        assert not scheduler.gui_is_open()
    finally:
        scheduler.ledger.close()
