"""Recurring runs in the GUI: the schedules, their next firing and last outcome; add, edit, remove.

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
    update_schedule,
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
        self.edit = QPushButton("Edit…")
        self.edit.setToolTip("Change when it fires and its time limit; its history stays")
        self.edit.clicked.connect(self.edit_selected)
        self.edit_dialog: ScheduleDialog | None = None
        self.table.setMinimumHeight(110)  # the header and three schedules
        hint = QLabel("Fire while <code>labpnn scheduler</code> runs")
        hint.setToolTip(
            "The scheduler is a service (docs/overnight.md): schedules fire with this window "
            "closed too. Add one with Schedule… in the launcher."
        )
        hint.setStyleSheet("color: palette(mid);")
        buttons = QHBoxLayout()
        buttons.addWidget(hint, 1)
        buttons.addWidget(self.edit)
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
        chosen = self.selected_name() is not None
        self.remove.setEnabled(chosen)
        self.edit.setEnabled(chosen)

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

    def change(self, name: str, cron: str, max_runtime_s: float | None) -> Schedule:
        """Change a schedule's time and limit in place; raises BadInput if refused."""
        sched = update_schedule(self.ledger, name, cron=cron, max_runtime_s=max_runtime_s)
        self.reload()
        self.message.emit("info", f"schedule '{name}' now '{sched.cron}'")
        return sched

    def edit_selected(self) -> ScheduleDialog | None:
        """Open the selected schedule's time and limit for editing (non-blocking dialog)."""
        name = self.selected_name()
        chosen = next((s for s in self.schedules if s.name == name), None)
        if chosen is None:
            return None
        self.edit_dialog = ScheduleDialog(self, existing=chosen, parent=self)
        self.edit_dialog.open()
        return self.edit_dialog

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
    """Name, cron and an optional time limit; refusals shown inline.

    Made from the launcher's run (``spec``: a new schedule) or from a stored schedule
    (``existing``: its time and limit change in place; its name and run do not).
    """

    def __init__(
        self,
        panel: SchedulesPanel,
        spec: Any = None,
        parent: QWidget | None = None,
        existing: Schedule | None = None,
    ):
        super().__init__(parent)
        if (spec is None) == (existing is None):
            raise ValueError("a ScheduleDialog needs either a run spec or an existing schedule")
        self.panel, self.spec, self.existing = panel, spec, existing
        self.created: Schedule | None = None
        what = existing or spec
        self.setWindowTitle(f"{'Edit schedule' if existing else 'Schedule'} {what.procedure}")
        self.name = QLineEdit(existing.name if existing else f"{spec.procedure}-nightly")
        self.name.setReadOnly(existing is not None)
        self.cron = QLineEdit(existing.cron if existing else "0 2 * * *")
        self.cron.setToolTip(
            "minute hour day-of-month month day-of-week, in this machine's time zone: "
            "'0 2 * * *' is 02:00 every night, '0 3 * * 0' 03:00 on Sundays"
        )
        limit = existing.max_runtime_s if existing else None
        self.max_runtime = QLineEdit("" if limit is None else f"{limit / 3600:g}")
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
        layout.addWidget(QLabel(f"<b>{what.procedure}</b> on <b>{what.station}</b>"))
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
        limit = None if hours is None else hours * 3600
        try:
            if self.existing is not None:
                self.created = self.panel.change(self.existing.name, self.cron.text(), limit)
            else:
                self.created = self.panel.add(self.spec, self.name.text(), self.cron.text(), limit)
        except BadInput as exc:  # a bad cron, a taken name, a parameter the run would refuse
            self.error.setText(str(exc))
            return
        super().accept()
