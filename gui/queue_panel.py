"""The queue panel: the ledger's run queue, reorderable, with its recent outcomes.

The list is re-read from the ledger every two seconds, because ``labpnn queue add``
in a terminal edits the same queue. Processing it is the window's job (it owns the
run process); this panel only edits and shows.
"""

from __future__ import annotations

import functools
from typing import Any

from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QBrush, QColor
from PyQt6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from labpnn.gui.theme import row_table, selected_key
from labpnn.queue import QueueEntry, RunQueue, recover_unattended

STATE_COLOURS = {
    "queued": "#90a4ae",
    "running": "#4fc3f7",
    "completed": "#81c784",
    "aborted": "#ffb74d",
    "failed": "#e57373",
    "crashed": "#e57373",
    "missed": "#ba68c8",
}


@functools.lru_cache(maxsize=64)
def _defaults(procedure: str) -> tuple[tuple[str, Any], ...]:
    try:
        from labpnn.catalog import procedure_class

        specs = procedure_class(procedure).parameter_specs()
        return tuple((k, spec.default) for k, spec in specs.items())
    except Exception:
        return ()


def defaults_of(procedure: str) -> dict[str, Any]:
    """A procedure's default parameters, so the list shows only what was changed."""
    return dict(_defaults(procedure))


class QueuePanel(QWidget):
    run_queue_toggled = pyqtSignal(bool)
    message = pyqtSignal(str, str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.queue = RunQueue()
        # entries a window closed mid-run left 'running'; the main window logs them
        self.recovered = recover_unattended(self.queue)
        self.entries: list[QueueEntry] = []
        self.processing = False
        self.table = row_table(["#", "Procedure", "Parameters", "State"])
        self.up = QPushButton("▲")
        self.up.setToolTip("Run earlier")
        self.up.clicked.connect(lambda: self.move_selected(-1))
        self.down = QPushButton("▼")
        self.down.setToolTip("Run later")
        self.down.clicked.connect(lambda: self.move_selected(+1))
        self.remove = QPushButton("Remove")
        self.remove.clicked.connect(self.remove_selected)
        self.clear = QPushButton("Clear done")
        self.clear.setToolTip("Forget the finished entries (the runs stay in the run browser)")
        self.clear.clicked.connect(self._clear_history)
        self.run_button = QPushButton("Run queue")
        self.run_button.setCheckable(True)
        self.run_button.setToolTip(
            "Run the queued entries one after another; unchecking stops after the current run"
        )
        self.run_button.toggled.connect(self.run_queue_toggled)
        self.summary = QLabel("")
        buttons = QHBoxLayout()
        for w in (self.up, self.down, self.remove, self.clear):
            buttons.addWidget(w)
        buttons.addStretch(1)
        buttons.addWidget(self.run_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.summary)
        layout.addLayout(buttons)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self._timer = QTimer(self)
        self._timer.setInterval(2000)
        self._timer.timeout.connect(self.reload)
        self._timer.start()
        self.reload()

    # -- showing ------------------------------------------------------------------------
    def reload(self) -> None:
        selected = self.selected_id()
        try:
            pending = self.queue.pending()
            done = self.queue.history(limit=8)
        except Exception as exc:
            self.summary.setText(f"cannot read the queue: {exc}")
            return
        self.entries = pending + done
        self.table.setRowCount(len(self.entries))
        for row, e in enumerate(self.entries):
            changed = {
                k: v
                for k, v in e.parameters.items()
                if defaults_of(e.procedure).get(k, object()) != v
            }
            params = ", ".join(f"{k}={v}" for k, v in changed.items()) or "defaults"
            cells = [str(e.id), f"{e.procedure} @ {e.station}", params, e.state]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, e.id)
                tip = e.describe() + (f"\n{e.error}" if e.error else "")
                tip += f"\nrun {e.run_id}" if e.run_id else ""
                item.setToolTip(tip)
                if e.state not in ("queued", "running"):
                    item.setForeground(QBrush(QColor("#8a8f98")))
                if col == 3:
                    item.setForeground(QBrush(QColor(STATE_COLOURS.get(e.state, "#e0e0e0"))))
                self.table.setItem(row, col, item)
            if e.id == selected:
                self.table.selectRow(row)
        self.table.resizeColumnToContents(0)
        self.table.resizeColumnToContents(1)
        waiting = sum(1 for e in pending if e.state == "queued")
        self.summary.setText(f"{waiting} waiting" + (" · processing" if self.processing else ""))
        self._update_buttons()

    def _update_buttons(self) -> None:
        """Move and remove act on waiting entries only (a running one is the run's)."""
        selected = self.selected_id()
        waiting = any(e.id == selected and e.state == "queued" for e in self.entries)
        for button in (self.up, self.down, self.remove):
            button.setEnabled(waiting)

    def queued(self) -> list[QueueEntry]:
        return [e for e in self.entries if e.state == "queued"]

    def selected_id(self) -> int | None:
        key = selected_key(self.table)
        return None if key is None else int(key)

    def select_entry(self, entry_id: int) -> None:
        for row, e in enumerate(self.entries):
            if e.id == entry_id:
                self.table.selectRow(row)

    # -- editing ------------------------------------------------------------------------
    def add(self, spec: Any) -> QueueEntry:
        entry = self.queue.add(
            spec.procedure, spec.station, spec.parameters, spec.station_set, spec.note, spec.tags
        )
        self.reload()
        self.message.emit("info", f"queued [{entry.id}] {entry.describe()}")
        return entry

    def move_selected(self, delta: int) -> None:
        entry_id = self.selected_id()
        order = [e.id for e in self.queued()]
        if entry_id not in order:
            return
        self._try(lambda: self.queue.move(entry_id, max(0, order.index(entry_id) + delta)))
        self.select_entry(entry_id)

    def remove_selected(self) -> None:
        entry_id = self.selected_id()
        if entry_id is not None:
            self._try(lambda: self.queue.remove(entry_id))

    def _clear_history(self) -> None:
        self._try(self.queue.clear_history)

    def _try(self, action: Any) -> None:
        try:
            action()
        except Exception as exc:
            self.message.emit("error", str(exc))
        self.reload()

    def set_processing(self, on: bool) -> None:
        self.processing = on
        self.run_button.blockSignals(True)
        self.run_button.setChecked(on)
        self.run_button.setText("Stop after current" if on else "Run queue")
        self.run_button.blockSignals(False)
        self.reload()

    def shutdown(self) -> None:
        """Stop re-reading and close the ledger connection (the queue itself stays)."""
        self._timer.stop()
        self.queue.close()
