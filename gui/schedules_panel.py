"""Recurring runs in the GUI: the schedules, their next firing and last outcome; add, remove.

The same ledger table as ``labpnn schedule`` (``labpnn.schedules``), checked the same way
when added. The window does not fire anything: schedules fire while ``labpnn scheduler``
runs (a systemd unit or a terminal, docs/overnight.md), so they keep firing with the GUI
closed.
"""

from __future__ import annotations

import math
import time
from typing import Any

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from labpnn.errors import BadInput
from labpnn.gui.theme import row_table, selected_key
from labpnn.ledger import Ledger
from labpnn.schedules import (
    Schedule,
    add_schedule,
    list_schedules,
    remove_schedule,
    schedule_status,
)

COLUMNS = ["Name", "When", "Next", "Last"]  # the procedure and station are in the tooltip


class SchedulesPanel(QWidget):
    message = pyqtSignal(str, str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.ledger = Ledger()
        self.schedules: list[Schedule] = []
        self.table = row_table(COLUMNS)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.remove = QPushButton("Remove")
        self.remove.setToolTip("Forget the schedule; its past firings stay in the ledger")
        self.remove.clicked.connect(self.remove_selected)
        self.table.setMinimumHeight(110)  # the header and three schedules
        hint = QLabel("Fire while <code>labpnn scheduler</code> runs")
        hint.setToolTip(
            "The scheduler is a service (docs/overnight.md): schedules fire with this window "
            "closed too. Add one with Schedule… in the launcher."
        )
        hint.setStyleSheet("color: palette(mid);")
        buttons = QHBoxLayout()
        buttons.addWidget(hint, 1)
        buttons.addWidget(self.remove)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self._timer = QTimer(self)
        self._timer.setInterval(5000)  # next/last change as firings happen
        self._timer.timeout.connect(self.reload)
        self._timer.start()
        self.reload()

    def reload(self) -> None:
        selected = self.selected_name()
        try:
            self.schedules = list_schedules(self.ledger)
            rows = [(s, *schedule_status(self.ledger, s, time.time())) for s in self.schedules]
        except Exception as exc:  # a locked or damaged ledger: say so, keep the window
            self.table.setRowCount(0)
            self.message.emit("error", f"cannot read the schedules: {exc}")
            return
        self.table.setRowCount(len(rows))
        for row, (s, upcoming, last) in enumerate(rows):
            params = " ".join(f"{k}={v}" for k, v in s.parameters.items())
            cells = [s.name, s.cron, upcoming, last]
            tip = f"{s.procedure} on {s.station} {params}".strip()
            if s.max_runtime_s:
                tip += f"\nstopped after {s.max_runtime_s:g} s"
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, s.name)
                item.setToolTip(tip if col < 2 else text)
                self.table.setItem(row, col, item)
            if s.name == selected:
                self.table.selectRow(row)
        self.table.resizeColumnsToContents()
        self._update_buttons()

    def selected_name(self) -> str | None:
        return selected_key(self.table)

    def _update_buttons(self) -> None:
        self.remove.setEnabled(self.selected_name() is not None)

    def add(self, spec: Any, name: str, cron: str, max_runtime_s: float | None = None) -> Schedule:
        """A schedule for the launcher's run; raises BadInput with the reason if refused."""
        from labpnn.queue import format_value

        sched = add_schedule(
            self.ledger,
            Schedule(
                name=name.strip(),
                procedure=spec.procedure,
                station=spec.station,
                cron=cron,
                parameters={k: format_value(v) for k, v in spec.parameters.items()},
                station_set=list(spec.station_set),
                max_runtime_s=max_runtime_s,
                note=spec.note,
            ),
        )
        self.reload()
        self.message.emit(
            "info", f"schedule '{sched.name}': {sched.procedure} on {sched.station}, '{sched.cron}'"
        )
        return sched

    def remove_selected(self) -> None:
        name = self.selected_name()
        if name is None:
            return
        try:
            remove_schedule(self.ledger, name)
            self.message.emit("info", f"schedule '{name}' removed (its firings stay in the ledger)")
        except BadInput as exc:
            self.message.emit("error", str(exc))
        self.reload()

    def shutdown(self) -> None:
        self._timer.stop()
        self.ledger.close()


class ScheduleDialog(QDialog):
    """Name, cron and an optional time limit for the launcher's run; refusals shown inline."""

    def __init__(self, panel: SchedulesPanel, spec: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.panel, self.spec = panel, spec
        self.created: Schedule | None = None
        self.setWindowTitle(f"Schedule {spec.procedure}")
        self.name = QLineEdit(f"{spec.procedure}-nightly")
        self.cron = QLineEdit("0 2 * * *")
        self.cron.setToolTip(
            "minute hour day-of-month month day-of-week, in this machine's time zone: "
            "'0 2 * * *' is 02:00 every night, '0 3 * * 0' 03:00 on Sundays"
        )
        self.max_runtime = QLineEdit("")
        self.max_runtime.setPlaceholderText("no limit")
        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #ff6e6e;")
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("When (cron)", self.cron)
        example = QLabel("e.g. 0 2 * * * = 02:00 every night (minute hour day month weekday)")
        example.setStyleSheet("color: palette(mid);")
        form.addRow("", example)
        form.addRow("Stop after (h)", self.max_runtime)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"<b>{spec.procedure}</b> on <b>{spec.station}</b>"))
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

    def accept(self) -> None:
        text = self.max_runtime.text().strip()
        hours: float | None = None
        if text:
            try:
                hours = float(text)
            except ValueError:
                hours = math.nan
            if not (math.isfinite(hours) and hours > 0):
                self.error.setText(f"'Stop after' must be a number of hours > 0, got '{text}'")
                return
        try:
            self.created = self.panel.add(
                self.spec,
                self.name.text(),
                self.cron.text(),
                None if hours is None else hours * 3600,
            )
        except BadInput as exc:  # a bad cron, a taken name, a parameter the run would refuse
            self.error.setText(str(exc))
            return
        super().accept()
