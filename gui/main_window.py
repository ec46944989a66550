"""The main window: station, launcher and queue on the left, live docks in the middle,
the run browser as a second tab, the log at the bottom.

The window never touches an instrument during a run: everything live comes from the
run process (thumbnails on the loopback channel, curves from the SWMR file). Outside
runs the alignment tools use the GUI's own locked connection (:mod:`.alignment`).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import numpy as np
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtGui import QAction, QKeySequence
from PyQt6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QWidget,
)

from labpnn.gui import instruments, patterns
from labpnn.gui.alignment import AlignmentSession
from labpnn.gui.camera_dock import CameraView
from labpnn.gui.curves_dock import CurvesView
from labpnn.gui.launcher import Launcher, RunSpec
from labpnn.gui.log_dock import LogView, QtLogHandler
from labpnn.gui.queue_panel import QueuePanel
from labpnn.gui.run_browser import RunBrowser
from labpnn.gui.run_control import RunController, elapsed_text
from labpnn.gui.run_files import read_snapshot
from labpnn.gui.schedules_panel import ScheduleDialog, SchedulesPanel
from labpnn.gui.settings_panel import SettingsPanel
from labpnn.gui.slm_dock import SlmView
from labpnn.gui.station_panel import StationPanel
from labpnn.gui.trace_dock import TraceView
from labpnn.queue import GuiPresence

log = logging.getLogger("labpnn.gui")
AREA = Qt.DockWidgetArea


class MainWindow(QMainWindow):
    def __init__(self, station: str | None = None, confirm: bool = True):
        super().__init__()
        self.confirm = confirm  # tests and screenshots answer dialogs themselves
        self.setWindowTitle("labpnn")
        self.resize(1500, 940)
        self.setDockNestingEnabled(True)
        self.session = AlignmentSession(self)

        # left: what to run, on what
        self.station_panel = StationPanel(self.session)
        self.settings_panel = SettingsPanel(self.session)
        self.launcher = Launcher()
        # the scheduler leaves the queue to an open window (docs/overnight.md, "The queue")
        self._presence = GuiPresence()
        self.queue_panel = QueuePanel()
        self.controller = RunController(self.queue_panel.queue, self)
        # middle: live docks, in their own dock area so they can be rearranged
        self.camera = CameraView()
        self.slm = SlmView()
        self.curves = CurvesView()
        self.trace = TraceView()
        self.live_area = QMainWindow()
        self.live_area.setWindowFlags(Qt.WindowType.Widget)
        self.live_area.setDockNestingEnabled(True)
        self.camera_dock = self._dock(
            self.live_area, "Camera", self.camera, AREA.LeftDockWidgetArea
        )
        self.curves_dock = self._dock(
            self.live_area, "Curves", self.curves, AREA.RightDockWidgetArea
        )
        self.slm_dock = self._dock(self.live_area, "SLM", self.slm, AREA.RightDockWidgetArea)
        self.trace_dock = self._dock(
            self.live_area, "Spectrum / audio", self.trace, AREA.RightDockWidgetArea
        )
        self.live_area.tabifyDockWidget(self.slm_dock, self.trace_dock)
        self.slm_dock.raise_()
        self.live_area.setCentralWidget(QWidget())
        self.live_area.centralWidget().hide()
        self.browser = RunBrowser()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.live_area, "Live")
        self.tabs.addTab(self.browser, "Runs")
        self.tabs.currentChanged.connect(self._tab_changed)
        self.setCentralWidget(self.tabs)
        # docks of the main window
        self.station_dock = self._dock(self, "Station", self.station_panel, AREA.LeftDockWidgetArea)
        self.settings_dock = self._dock(
            self, "Settings", self.settings_panel, AREA.LeftDockWidgetArea
        )
        self.tabifyDockWidget(self.station_dock, self.settings_dock)
        self.station_dock.raise_()
        self.launcher_dock = self._dock(self, "Launch", self.launcher, AREA.LeftDockWidgetArea)
        self.queue_dock = self._dock(self, "Queue", self.queue_panel, AREA.LeftDockWidgetArea)
        self.schedules_panel = SchedulesPanel()
        self.schedules_dock = self._dock(
            self, "Schedules", self.schedules_panel, AREA.LeftDockWidgetArea
        )
        self.tabifyDockWidget(self.queue_dock, self.schedules_dock)
        self.queue_dock.raise_()
        self.schedule_dialog: ScheduleDialog | None = None
        self.log_view = LogView()
        self.log_dock = self._dock(self, "Log", self.log_view, AREA.BottomDockWidgetArea)
        self.resizeDocks(
            [self.station_dock, self.launcher_dock, self.queue_dock],
            [230, 420, 220],
            Qt.Orientation.Vertical,
        )
        self.resizeDocks([self.station_dock], [430], Qt.Orientation.Horizontal)
        self.resizeDocks([self.log_dock], [130], Qt.Orientation.Vertical)
        self.live_area.resizeDocks(
            [self.camera_dock, self.curves_dock], [620, 440], Qt.Orientation.Horizontal
        )
        self.live_area.resizeDocks(
            [self.curves_dock, self.slm_dock], [500, 400], Qt.Orientation.Vertical
        )

        self._build_status_bar()
        self._build_actions()
        self._wire()
        self._log_handler = QtLogHandler()
        self._log_handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        self._log_handler.bridge.record.connect(self.log_view.add)
        logging.getLogger("labpnn").addHandler(self._log_handler)
        self._clock = QTimer(self)
        self._clock.setInterval(500)
        self._clock.timeout.connect(self._tick)
        self._clock.start()
        self._set_running(False)
        for name, why in self.launcher.unavailable.items():
            self.say("warning", f"procedure '{name}' is not available: {why}")
        from labpnn.queue import describe_settled

        for entry in self.queue_panel.recovered:
            self.say("warning", describe_settled(entry))
        if station:
            self.station_panel.open_station(station)
        else:
            self._station_changed(None)

    @staticmethod
    def _dock(owner: QMainWindow, title: str, widget: QWidget, area: Any) -> QDockWidget:
        dock = QDockWidget(title, owner)
        dock.setObjectName(title)
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        owner.addDockWidget(area, dock)
        return dock

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.station_label = QLabel("no station")
        self.run_label = QLabel("idle")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setMaximumWidth(220)
        self.progress.setFormat("%p%")
        self.elapsed = QLabel("")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setCheckable(True)
        self.pause_button.toggled.connect(self.set_paused)
        self.abort_button = QPushButton("Abort  (Esc)")
        self.abort_button.setObjectName("danger")
        self.abort_button.clicked.connect(lambda: self.abort_run(confirm=self.confirm))
        for w in (self.station_label, self.run_label):
            bar.addWidget(w)
        for w in (self.progress, self.elapsed, self.pause_button, self.abort_button):
            bar.addPermanentWidget(w)

    def _build_actions(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        self._action(file_menu, "Open station…", self.station_panel._browse, "Ctrl+O")
        self._action(file_menu, "Open run file…", self.browser._browse)
        file_menu.addSeparator()
        self._action(file_menu, "Quit", self.close, "Ctrl+Q")
        run_menu = menu.addMenu("&Run")
        self.run_action = self._action(run_menu, "Run", self.run_from_launcher, "Ctrl+R")
        self._action(run_menu, "Add to queue", self.queue_from_launcher, "Ctrl+Shift+R")
        self.abort_action = self._action(
            run_menu,
            "Abort…",
            lambda: self.abort_run(self.confirm),
            QKeySequence(Qt.Key.Key_Escape),
        )
        view = menu.addMenu("&View")
        for dock in (
            self.station_dock,
            self.settings_dock,
            self.launcher_dock,
            self.queue_dock,
            self.schedules_dock,
            self.log_dock,
            self.camera_dock,
            self.curves_dock,
            self.slm_dock,
            self.trace_dock,
        ):
            view.addAction(dock.toggleViewAction())
        self._action(
            view, "Run browser", lambda: self.tabs.setCurrentWidget(self.browser), "Ctrl+B"
        )
        self._action(
            view, "Live view", lambda: self.tabs.setCurrentWidget(self.live_area), "Ctrl+L"
        )

    def _action(self, menu: Any, text: str, slot: Any, shortcut: Any = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(lambda _=False: slot())
        menu.addAction(action)
        self.addAction(action)
        return action

    def _wire(self) -> None:
        sp, c = self.station_panel, self.controller
        sp.station_changed.connect(self._station_changed)
        for source in (sp, self.settings_panel, self.queue_panel, self.schedules_panel, c):
            source.message.connect(self.say)
        self.launcher.schedule_requested.connect(self.schedule_from_spec)
        self.session.connected_changed.connect(self._update_alignment)
        self.session.frame.connect(self.camera.show_frame)
        self.session.trace.connect(lambda n, a, h: self.trace.show_trace(n, a, h, h.get("x")))
        self.session.problem.connect(lambda text: self.say("error", text))
        self.camera.live_toggled.connect(self._camera_live)
        self.camera.exposure_changed.connect(self._set_exposure)
        self.trace.live_toggled.connect(self._trace_live)
        self.slm.pattern_requested.connect(self._show_test_pattern)
        self.launcher.run_requested.connect(self.run_now)
        self.launcher.queue_requested.connect(self.queue_panel.add)
        self.queue_panel.run_queue_toggled.connect(self._queue_toggled)
        c.queue_state.connect(self.queue_panel.set_processing)
        c.started.connect(lambda spec: self._set_running(True, spec))
        c.ended.connect(self._run_ended)
        c.hello.connect(self._run_hello)
        c.output.connect(self.log_view.run_line)
        c.progress.connect(lambda f: self.progress.setValue(int(1000 * f)))
        c.frame.connect(lambda name, a, h: self.camera.show_frame(a, h))
        c.frame.connect(lambda name, a, h: self.curves.add_camera_frame(h))
        c.slm.connect(lambda a, h: self.slm.show_pattern(a, h))
        c.trace.connect(lambda name, a, h: self._show_run_trace(name, a, h))
        c.columns.connect(lambda columns, units: self.curves.set_columns(columns, units=units))
        self.browser.rerun_requested.connect(self._load_parameters)

    # -- messages ---------------------------------------------------------------------------
    def say(self, level: str, text: str) -> None:
        self.log_view.add(level, text)
        if level in ("error", "warning"):
            self.statusBar().showMessage(text, 8000)

    # -- station ----------------------------------------------------------------------------
    def _station_changed(self, config: Any) -> None:
        sp = self.station_panel
        if config is None:
            self.station_label.setText("no station: choose one in the Station panel")
            self.launcher.set_station("", "")
            self._update_alignment()
            return
        arg = sp.picker.currentData() or sp.source
        self.launcher.set_station(arg, config.bench.kind)
        self.settings_panel.set_config(config)
        kind = "SIMULATED" if config.simulated else "REAL"
        colour = "#b39ddb" if config.simulated else "#a5d6a7"
        self.station_label.setText(
            f"<b>{config.name}</b> <span style='color:{colour}'>"
            f"{kind}</span> {config.bench.kind} bench"
        )
        roles = set(config.instruments)
        has_trace = bool(roles & {"vna", "soundcard", "audio", "sound"}) or any(
            "vna" in i.driver.lower() or "sound" in i.driver.lower()
            for i in config.instruments.values()
        )
        self.trace_dock.setVisible(has_trace)
        drivers = [i.driver.lower() for i in config.instruments.values()]
        self.slm_dock.setVisible("slm" in roles or any("slm" in d for d in drivers))
        self.camera_dock.setVisible("camera" in roles or any("camera" in d for d in drivers))
        self._update_alignment()

    def _update_alignment(self, *_: Any) -> None:
        st = self.session.station if self.session.connected else None
        running = self.controller.running
        why = "a run owns the bench" if running else "Connect the station to align"
        self.camera.set_alignment_enabled(
            st is not None and not running and instruments.camera_role(st) is not None, why
        )
        self.slm.set_alignment_enabled(
            st is not None and not running and instruments.slm_role(st) is not None, why
        )
        has_trace = st is not None and (instruments.vna_role(st) or instruments.audio_role(st))
        self.trace.set_alignment_enabled(bool(has_trace) and not running, why)
        if st is not None:
            cam = self.session.driver(instruments.camera_role(st))
            if cam is not None and hasattr(cam, "effective_range"):
                with contextlib.suppress(Exception):
                    lo, hi = cam.effective_range("exposure_s") or (1e-5, 0.1)
                    self.camera.set_exposure_range(
                        lo, hi, self.session.get_setting(instruments.camera_role(st), "exposure_s")
                    )

    def _camera_live(self, on: bool) -> None:
        if on:
            self.session.start_live(camera=True)
        else:
            self.session.stop_live(camera=True, trace=False)

    def _trace_live(self, on: bool) -> None:
        if on:
            self.session.start_live(trace=True)
        else:
            self.session.stop_live(camera=False, trace=True)

    def _set_exposure(self, seconds: float) -> None:
        role = instruments.camera_role(self.session.station) if self.session.connected else None
        if role is None:
            return
        try:
            self.session.set_setting(role, "exposure_s", seconds)
        except Exception as exc:
            self.say("error", f"exposure refused: {exc}")

    def _show_test_pattern(self, name: str, size: float, level: float, angle: float) -> None:
        try:
            grey = self.session.show_pattern(
                lambda shape: patterns.make(name, shape, size, level, angle)
            )
        except Exception as exc:
            self.say("error", f"test pattern not shown: {exc}")
            return
        self.slm.show_pattern(grey, caption=f"test pattern: {name}")
        self.say("info", f"SLM shows the {name} test pattern")

    # -- runs -------------------------------------------------------------------------------
    def run_from_launcher(self) -> bool:
        return self.launcher.request(self.launcher.run_requested)

    def queue_from_launcher(self) -> bool:
        return self.launcher.request(self.launcher.queue_requested)

    def schedule_from_spec(self, spec: RunSpec) -> ScheduleDialog:
        """Ask for a name and a cron for the launcher's run (non-blocking dialog)."""
        self.schedule_dialog = ScheduleDialog(self.schedules_panel, spec, self)
        self.schedule_dialog.accepted.connect(self.schedules_dock.raise_)
        self.schedule_dialog.open()
        return self.schedule_dialog

    def run_now(self, spec: RunSpec) -> bool:
        if self.controller.running:
            self.say("warning", "a run is in progress; use 'Add to queue'")
            return False
        self._release_bench()
        return self.controller.start(spec)

    def _release_bench(self) -> None:
        if self.session.connected:
            outcome = self.session.disconnect_station()
            self.say("info", f"released the bench for the run (safe state: {outcome})")

    def _queue_toggled(self, on: bool) -> None:
        if on:
            self._release_bench()
            self.controller.start_queue()
        else:
            self.controller.stop_queue()
            self.say("info", "the queue stops after the current run")

    def abort_run(self, confirm: bool = True) -> bool:
        if not self.controller.running:
            return False
        if confirm:
            answer = QMessageBox.question(
                self,
                "Abort the run?",
                f"Abort {self.controller.spec.procedure}? The run stops at its next step, its "
                "instruments go to their safe state, and the data so far are kept.",
                QMessageBox.StandardButton.Abort | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel,
            )
            if answer != QMessageBox.StandardButton.Abort:
                return False
        self.controller.abort()
        self.run_label.setText("aborting…")
        return True

    def set_paused(self, paused: bool) -> None:
        if not self.controller.set_paused(paused):
            self.pause_button.blockSignals(True)
            self.pause_button.setChecked(False)
            self.pause_button.blockSignals(False)
            return
        self.pause_button.setText("Resume" if paused else "Pause")

    def _set_running(self, running: bool, spec: Any = None) -> None:
        self.launcher.set_busy(running)
        self.station_panel.set_run_active(running)
        self.abort_button.setEnabled(running)
        self.abort_action.setEnabled(running)
        self.pause_button.setEnabled(running and bool(getattr(spec, "supports_pause", False)))
        self.pause_button.setToolTip(
            "" if self.pause_button.isEnabled() else "this procedure cannot be paused"
        )
        self.progress.setVisible(running)
        if running:
            self.statusBar().clearMessage()  # a warning about the last run must not outlive it
            self.progress.setValue(0)
            for view in (self.camera, self.curves, self.slm, self.trace):
                view.clear()
            # shown again by the run's first trace: a training run on the acoustic bench
            # sends none, and an empty plot took half the live view
            self.trace_dock.setVisible(False)
            self.run_label.setText(f"running <b>{spec.procedure}</b>{self._on_station(spec)}")
            self.tabs.setCurrentWidget(self.live_area)
        self._update_alignment()

    def _on_station(self, spec: Any) -> str:
        """' on STATION' when a (queued) run uses another station than the one shown."""
        station = str(getattr(spec, "station", "") or "")
        shown = self.launcher.station
        return f" on <b>{station}</b>" if station and station != shown else ""

    def _run_hello(self, header: dict[str, Any]) -> None:
        self.run_label.setText(
            f"running <b>{header.get('procedure')}</b>{self._on_station(self.controller.spec)}"
            f" · run {header.get('run_id')}"
        )
        snapshot = read_snapshot(header.get("path", ""))
        if snapshot:
            self.settings_panel.show_snapshot(snapshot, "this run's snapshot")

    def _show_run_trace(self, name: str, trace: Any, header: dict[str, Any]) -> None:
        if not self.trace_dock.isVisible():
            self.trace_dock.setVisible(True)
        x = header.get("x")
        self.trace.show_trace(name, trace, header, None if x is None else np.asarray(x, float))

    def _run_ended(self, status: str, path: str) -> None:
        self._set_running(False)
        if self.station_panel.config is not None:
            self._station_changed(self.station_panel.config)  # the docks of its station
        self.pause_button.setChecked(False)
        self.run_label.setText(f"last run: <b>{status}</b>")
        self.elapsed.setText("")
        if self.tabs.currentWidget() is self.browser:
            self.browser.refresh()

    def _tick(self) -> None:
        p = self.controller.process
        if p is not None:
            self.elapsed.setText(elapsed_text(p.elapsed_s()))

    def _tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.browser:
            self.browser.refresh()

    def _load_parameters(self, info: Any) -> None:
        try:
            self.launcher.select(info.procedure)
        except KeyError as exc:
            self.say("error", str(exc))
            return
        self.launcher.form.set_values(info.parameters)
        self.launcher_dock.raise_()
        self.say("info", f"loaded the parameters of {info.path.name} into the launcher")

    # -- closing ----------------------------------------------------------------------------
    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt name)
        if self.controller.running and self.confirm:
            answer = QMessageBox.question(
                self,
                "A run is in progress",
                "The run keeps going without the window (it is its own process); you can "
                "follow it later in the run browser. Close the window?",
                QMessageBox.StandardButton.Close | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel,
            )
            if answer != QMessageBox.StandardButton.Close:
                event.ignore()
                return
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Release everything the window holds; runs in progress keep going."""
        self._clock.stop()
        logging.getLogger("labpnn").removeHandler(self._log_handler)
        with contextlib.suppress(Exception):
            self.session.disconnect_station()
        with contextlib.suppress(Exception):
            self.controller.close()
        with contextlib.suppress(Exception):
            self.queue_panel.shutdown()
        with contextlib.suppress(Exception):
            self.schedules_panel.shutdown()
        self._presence.close()
