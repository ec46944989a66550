"""Follows a live run file through SWMR and hands on the new rows of its columns.

The loopback channel may drop messages under load; the file never does. So the
curves are drawn from the file: every ``interval_ms`` the watcher opens it briefly
(``swmr=True, locking=False``, see :mod:`labpnn.gui.run_files`), reads the rows
added since the last look, and closes it again, so the writer is never hindered.
"""

from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QObject, QTimer, pyqtSignal

from labpnn.gui.run_files import read_column_units, read_columns
from labpnn.storage import open_run


class RunFileWatcher(QObject):
    # name -> all rows so far (np.ndarray); name -> units, for the columns that declare them
    columns = pyqtSignal(dict, dict)

    def __init__(self, parent: QObject | None = None, interval_ms: int = 500):
        super().__init__(parent)
        self.path = ""
        self.data: dict[str, np.ndarray] = {}
        self.units: dict[str, str] = {}
        self.reads = 0
        self.failed_reads = 0
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.refresh)

    def follow(self, path: str) -> None:
        self.path = path
        self.data = {}
        self.units = {}
        self._timer.start()
        self.refresh()

    def stop(self, final_read: bool = True) -> None:
        self._timer.stop()
        if final_read and self.path:
            self.refresh()

    def refresh(self) -> None:
        if not self.path:
            return
        since = {k: len(v) for k, v in self.data.items()}
        try:
            with open_run(self.path) as f:
                new = read_columns(f, since)
                # a column's units are written just after its first row: look until they are
                units = self.units
                if any(name not in units for name in (*self.data, *new)):
                    units = read_column_units(f, units)
        except Exception:  # mid-restructure or not yet visible: next tick
            self.failed_reads += 1
            return
        self.reads += 1
        changed = units != self.units
        self.units = units
        for name, rows in new.items():
            if len(rows):
                old = self.data.get(name)
                self.data[name] = rows if old is None else np.concatenate([old, rows])
                changed = True
        if changed:
            self.columns.emit(dict(self.data), dict(self.units))
