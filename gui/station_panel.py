"""The station panel: which instruments play which role, simulated or real, connected or not.

A broken station file or a missing device is a normal lab situation, not a crash: the
panel shows the one-line reason labpnn gives (file, line, what to do) in a red banner
and the rest of the window stays usable, so the operator can open another station.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QColor
from PyQt6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from labpnn import paths

ADDRESS_KEYS = ("address", "resource", "serial", "screen", "device", "port", "display")
SIM_COLOUR, REAL_COLOUR = "#7e57c2", "#2e7d32"


def address_of(options: dict[str, Any]) -> str:
    for key in ADDRESS_KEYS:
        if key in options and options[key] not in (None, ""):
            return f"{key}: {options[key]}"
    return ""


def describe_error(exc: BaseException) -> str:
    """One readable line, never a traceback."""
    from labpnn.errors import LabpnnError

    if isinstance(exc, LabpnnError):
        return str(exc)
    if isinstance(exc, (ModuleNotFoundError, ImportError)):
        return f"a driver could not be imported: {exc}"
    return f"{type(exc).__name__}: {exc}"


class StationPanel(QWidget):
    station_changed = pyqtSignal(object)  # StationConfig or None
    message = pyqtSignal(str, str)  # level, text

    def __init__(self, session: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.config: Any = None
        self.source = ""
        self.error = ""
        self.run_active = False

        self.picker = QComboBox()
        self.picker.setToolTip("Bundled stations; use Open… for a station file")
        self.picker.activated.connect(lambda _: self.open_station(self.picker.currentData()))
        self.open_button = QPushButton("Open…")
        self.open_button.clicked.connect(self._browse)
        self.banner = QLabel("")
        self.banner.setWordWrap(True)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.setStyleSheet(
            "QLabel { background: #5c1a1a; color: #ffdede; border: 1px solid #e53935;"
            " border-radius: 4px; padding: 6px; }"
        )
        self.banner.setVisible(False)
        self.summary = QLabel("no station")
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Role", "Driver", "Address", "Kind"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.connect_button = QPushButton("Connect")
        self.connect_button.setCheckable(True)
        self.connect_button.setToolTip(
            "Connect for alignment: the GUI takes the instrument locks, so no run can start "
            "on this bench until you disconnect (runs started here disconnect it first)"
        )
        self.connect_button.clicked.connect(self._toggle_connection)
        self.state = QLabel("")

        top = QHBoxLayout()
        top.addWidget(self.picker, 1)
        top.addWidget(self.open_button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.connect_button)
        bottom.addWidget(self.state, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.banner)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addLayout(bottom)
        self._fill_picker()
        session.connected_changed.connect(self._connection_changed)
        self._connection_changed(False)

    def _fill_picker(self) -> None:
        self.picker.clear()
        self.picker.addItem("— choose a station —", "")
        try:
            for name in paths.bundled_stations():
                self.picker.addItem(name, name)
        except Exception:
            pass

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a station file", "", "Station files (*.yaml *.yml);;All files (*)"
        )
        if path:
            self.open_station(path)

    # -- loading ------------------------------------------------------------------------
    def open_station(self, name_or_path: str) -> bool:
        """Load a station (bundled name or file); on failure show why and keep going."""
        from labpnn.station import StationConfig

        if not name_or_path:
            return False
        if self.run_active:
            self.message.emit("warning", "finish or abort the run before changing the station")
            return False
        if self.session.connected:
            self.session.disconnect_station()
        try:
            config = StationConfig.load(name_or_path)
            config.check()
        except Exception as exc:
            self._show_error(describe_error(exc), name_or_path)
            return False
        self.config = config
        self.source = str(config.source) if config.source else str(name_or_path)
        self.error = ""
        self.banner.setVisible(False)
        index = self.picker.findData(name_or_path)
        self.picker.setCurrentIndex(index if index >= 0 else 0)
        if index < 0:
            self.picker.setItemText(0, Path(self.source).name)
        self._fill_table()
        self.message.emit("info", f"station '{config.name}' loaded from {self.source}")
        self.station_changed.emit(config)
        return True

    def _show_error(self, text: str, what: str) -> None:
        self.error = text
        still = (
            f"<br><i>Still using station '{self.config.name}'.</i>"
            if self.config is not None
            else ""
        )
        self.banner.setText(f"<b>Cannot use station '{Path(str(what)).name}'</b><br>{text}{still}")
        self.banner.setVisible(True)
        self.message.emit("error", f"station {what}: {text}")
        if self.config is None:
            self.station_changed.emit(None)
        self._update_controls()

    def _fill_table(self) -> None:
        cfg = self.config
        kind = "simulated" if cfg.simulated else "real"
        self.summary.setText(f"<b>{cfg.name}</b> · {cfg.bench.kind} bench · {kind}")
        self.table.setRowCount(len(cfg.instruments))
        for row, (role, inst) in enumerate(cfg.instruments.items()):
            badge = QTableWidgetItem("SIM" if inst.simulated else "REAL")
            badge.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            badge.setBackground(QBrush(QColor(SIM_COLOUR if inst.simulated else REAL_COLOUR)))
            badge.setForeground(QBrush(QColor("white")))
            badge.setToolTip(
                "simulated: served by labpnn's simulated world"
                if inst.simulated
                else "real hardware"
            )
            driver = QTableWidgetItem(inst.driver.rsplit(".", 1)[-1])
            driver.setToolTip(inst.driver)
            for col, item in enumerate(
                (QTableWidgetItem(role), driver, QTableWidgetItem(address_of(inst.options)), badge)
            ):
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()
        rows = sum(self.table.rowHeight(r) for r in range(self.table.rowCount()))
        self.table.setMinimumHeight(min(240, rows + self.table.horizontalHeader().height() + 6))
        self._update_controls()

    def mark_role(self, role: str, problem: str) -> None:
        """Colour one instrument's row red with the reason (e.g. device missing)."""
        if self.config is None:
            return
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.text() == role:
                for col in range(3):
                    cell = self.table.item(row, col)
                    cell.setBackground(QBrush(QColor("#5c1a1a")))
                    cell.setToolTip(problem)

    # -- connecting -----------------------------------------------------------------------
    def set_run_active(self, active: bool) -> None:
        self.run_active = active
        self._update_controls()

    def _toggle_connection(self) -> None:
        if self.session.connected:
            outcome = self.session.disconnect_station()
            bad = {r: o for r, o in outcome.items() if o != "ok"}
            self.message.emit(
                "warning" if bad else "info",
                f"disconnected; safe state: {outcome}" if outcome else "disconnected",
            )
        else:
            self.connect_station()

    def connect_station(self) -> bool:
        if self.config is None:
            return False
        try:
            self.session.connect_station(self.config)
        except Exception as exc:
            text = describe_error(exc)
            self.banner.setText(f"<b>Cannot connect '{self.config.name}'</b><br>{text}")
            self.banner.setVisible(True)
            for role in self.config.instruments:
                if text.startswith(f"{role}:") or f"'{role}'" in text:
                    self.mark_role(role, text)
            self.message.emit("error", f"connect {self.config.name}: {text}")
            self._connection_changed(False)
            return False
        self.banner.setVisible(False)
        self.message.emit("info", f"connected to {self.config.name} (the GUI holds its locks)")
        return True

    def _connection_changed(self, connected: bool) -> None:
        self.connect_button.blockSignals(True)
        self.connect_button.setChecked(connected)
        self.connect_button.setText("Disconnect" if connected else "Connect")
        self.connect_button.blockSignals(False)
        self._update_controls()

    def _update_controls(self) -> None:
        can = self.config is not None and not self.run_active
        self.connect_button.setEnabled(can or self.session.connected)
        # The window describes the running bench (docks, settings, launcher): keep it until
        # the run ends.
        for widget in (self.picker, self.open_button):
            widget.setEnabled(not self.run_active)
            widget.setToolTip(
                "finish or abort the run to change the station"
                if self.run_active
                else "Bundled stations; use Open… for a station file"
                if widget is self.picker
                else "Open a station file"
            )
        if self.session.connected:
            self.state.setText("connected · locks held")
        elif self.run_active:
            self.state.setText("a run owns the bench")
        else:
            self.state.setText("not connected")
