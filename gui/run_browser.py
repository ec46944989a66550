"""The run browser: past runs from the data directory, their details and plots, side by side.

Status comes from the ledger when it knows the run (it is the authority: a run whose
process died still says ``running`` in its own file), else from the file. Select one
run to see its parameters, summary, safe state, log, curves and last frame; select
two to overlay their curves (the second dashed).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QColor, QPixmap
from PyQt6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from labpnn import paths
from labpnn.gui.camera_dock import CameraView
from labpnn.gui.curves_dock import CurvesView
from labpnn.gui.queue_panel import STATE_COLOURS
from labpnn.gui.run_files import (
    RunInfo,
    find_run_files,
    headline,
    ledger_statuses,
    read_frame,
    read_info,
    read_snapshot,
)
from labpnn.gui.settings_panel import snapshot_values
from labpnn.gui.theme import row_table

COLUMNS = ["Started", "Procedure", "Station", "Status", "Headline", "File"]
PATH_ROLE = Qt.ItemDataRole.UserRole


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class FittedImage(QLabel):
    """A picture scaled to fit the space it has, keeping its aspect ratio."""

    def __init__(self) -> None:
        super().__init__("")
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(200, 150)
        self._pixmap: QPixmap | None = None

    def set_image(self, pixmap: QPixmap) -> None:
        self._pixmap = pixmap
        self._fit()

    def setText(self, text: str) -> None:  # noqa: N802 (Qt name)
        self._pixmap = None
        super().setText(text)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        if self._pixmap is not None and not self._pixmap.isNull():
            super().setPixmap(
                self._pixmap.scaled(
                    self.size(),
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            )


class RunBrowser(QWidget):
    rerun_requested = pyqtSignal(object)  # RunInfo: load its parameters into the launcher

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.infos: dict[str, RunInfo] = {}
        self.shown: list[str] = []
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("filter: procedure, station, status, tag…")
        self.filter.textChanged.connect(self._apply_filter)
        refresh = QPushButton("Refresh")
        refresh.clicked.connect(self.refresh)
        open_file = QPushButton("Open file…")
        open_file.clicked.connect(self._browse)
        self.rerun = QPushButton("Load parameters")
        self.rerun.setToolTip("Put this run's procedure and parameters into the launcher")
        self.rerun.clicked.connect(self._rerun)
        self.table = row_table(COLUMNS, multi=True)
        self.table.setSortingEnabled(True)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.where = QLabel("")
        self.where.setStyleSheet("color: palette(mid);")

        self.title = QLabel("Select a run; select two to compare their curves")
        self.title.setWordWrap(True)
        self.details = QTreeWidget()
        self.details.setHeaderLabels(["", "value"])
        self.details.setAlternatingRowColors(True)
        self.curves = CurvesView()
        # not pg.ImageView: its named ViewBox crashes pyqtgraph when windows are deleted
        self.frame_view = CameraView(alignment=False)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.report = FittedImage()
        self._reports = tempfile.TemporaryDirectory(prefix="labpnn-reports-")
        self.tabs = QTabWidget()
        self.tabs.addTab(self.report, "Report")
        self.tabs.addTab(self.curves, "Curves")
        self.tabs.addTab(self.frame_view, "Last frame")
        self.tabs.addTab(self.log, "Log")
        self.tabs.currentChanged.connect(lambda _: self._show_report())

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        bar.addWidget(self.filter, 1)
        bar.addWidget(refresh)
        bar.addWidget(open_file)
        lv.addLayout(bar)
        lv.addWidget(self.table, 1)
        lv.addWidget(self.where)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.rerun)
        rv.addLayout(head)
        split_right = QSplitter(Qt.Orientation.Vertical)
        split_right.addWidget(self.details)
        split_right.addWidget(self.tabs)
        split_right.setSizes([220, 520])
        rv.addWidget(split_right, 1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setSizes([470, 730])
        layout = QVBoxLayout(self)
        layout.addWidget(split)

    # -- listing --------------------------------------------------------------------------
    def refresh(self) -> int:
        """Re-list the data directory; returns the number of runs found."""
        data_dir = paths.data_dir()
        files = find_run_files(data_dir)
        ledger = ledger_statuses()
        self.infos = {}
        for path in files:
            info = read_info(path, columns=False, log=False)
            row = ledger.get(str(path.resolve()))
            if row:
                info.ledger_status = row["status"]
            self.infos[str(path)] = info
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(self.infos))
        for r, (key, info) in enumerate(self.infos.items()):
            cells = [
                info.start_time[:19].replace("T", " "),
                info.procedure,
                info.station,
                info.status,
                headline(info.summary),
                Path(key).name,
            ]
            if info.error:
                cells[1:4] = ["?", "?", "unreadable"]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(PATH_ROLE, key)
                item.setToolTip(info.error or key)
                if c == 3:
                    item.setForeground(QBrush(QColor(STATE_COLOURS.get(info.status, "#e0e0e0"))))
                self.table.setItem(r, c, item)
        self.table.setSortingEnabled(True)
        self.table.sortItems(0, Qt.SortOrder.DescendingOrder)
        self.table.resizeColumnsToContents()
        self.where.setText(f"{len(self.infos)} runs in {data_dir}")
        self._apply_filter(self.filter.text())
        return len(self.infos)

    def _apply_filter(self, text: str) -> None:
        words = text.lower().split()
        for r in range(self.table.rowCount()):
            row_text = " ".join(
                self.table.item(r, c).text().lower()
                for c in range(self.table.columnCount())
                if self.table.item(r, c)
            )
            key = self.table.item(r, 0).data(PATH_ROLE) if self.table.item(r, 0) else ""
            info = self.infos.get(key)
            if info is not None:
                row_text += " " + " ".join(map(str, info.attrs.get("tags") or []))
            self.table.setRowHidden(r, not all(w in row_text for w in words))

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open a run file", str(paths.data_dir()), "Run files (*.h5);;All files (*)"
        )
        if path:
            self.open_runs([path])

    def select_paths(self, paths_: list[str]) -> None:
        wanted = {str(Path(p)) for p in paths_}
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QTableWidget.SelectionMode.MultiSelection)
        for r in range(self.table.rowCount()):
            item = self.table.item(r, 0)
            if item is not None and item.data(PATH_ROLE) in wanted:
                self.table.selectRow(r)
        self.table.setSelectionMode(mode)

    def _selection_changed(self) -> None:
        keys = []
        for index in self.table.selectionModel().selectedRows():
            key = self.table.item(index.row(), 0).data(PATH_ROLE)
            if key not in keys:
                keys.append(key)
        if keys:
            self.open_runs(keys[:2])

    # -- showing --------------------------------------------------------------------------
    def open_runs(self, files: list[str]) -> list[RunInfo]:
        """Show one run, or overlay the curves of two."""
        infos = []
        for path in files[:2]:
            info = read_info(path)
            listed = self.infos.get(str(path))
            if listed is not None:
                info.ledger_status = listed.ledger_status
            infos.append(info)
        self.shown = [str(i.path) for i in infos]
        self.curves.clear()
        for n, info in enumerate(infos):
            label = f"{n + 1}" if len(infos) > 1 else ""
            self.curves.set_columns(info.columns, run=label, dashed=n == 1, colour_offset=3 * n,
                                    units=info.units)  # fmt: skip
        self._show_details(infos)
        first = infos[0] if infos else None
        self.log.setPlainText(
            "\n".join(f"{lvl:7s} {msg}" for _, lvl, msg in first.log) if first else ""
        )
        self._show_frame(first)
        if first is not None:
            own_report = _has_own_report(first.procedure)
            curves_first = len(infos) > 1 or (bool(first.columns) and not own_report)
            self.tabs.setCurrentIndex(1 if curves_first else 0)
        self._show_report()
        return infos

    def _show_details(self, infos: list[RunInfo]) -> None:
        self.details.clear()
        if not infos:
            return
        if len(infos) == 1:
            i = infos[0]
            self.title.setText(
                f"<b>{i.procedure}</b> on {i.station} — <b>{i.status}</b>"
                f"<br><small>{i.path}</small>"
            )
        else:
            self.title.setText("Comparing <b>1</b> (solid) with <b>2</b> (dashed)")
        for n, info in enumerate(infos):
            top = QTreeWidgetItem(
                [f"{n + 1}: {info.path.name}" if len(infos) > 1 else "run", info.status]
            )
            self.details.addTopLevelItem(top)
            if info.error:
                QTreeWidgetItem(top, ["error", info.error])
            for key in (
                "start_time",
                "end_time",
                "started_by",
                "note",
                "error",
                "simulated",
                "simulator_seed",
                "run_id",
            ):
                if key in info.attrs and info.attrs[key] not in ("", None):
                    QTreeWidgetItem(top, [key, _fmt(info.attrs[key])])
            for title, values in (
                ("parameters", info.parameters),
                ("summary", info.summary),
                ("safe state", info.safe_state),
            ):
                group = QTreeWidgetItem(top, [title, ""])
                for k, v in values.items():
                    QTreeWidgetItem(group, [k, _fmt(v)])
                group.setExpanded(title != "safe state" or not info.safe_state.get("all_safe"))
            data = QTreeWidgetItem(top, ["data", ""])
            for name, shape in {**info.frames, **info.traces}.items():
                QTreeWidgetItem(data, [name, "×".join(map(str, shape))])
            top.setExpanded(True)
        self.details.resizeColumnToContents(0)

    def _show_frame(self, info: RunInfo | None) -> None:
        if info is None or not info.frames:
            self.frame_view.clear()
            return
        name = next(iter(info.frames))
        frame = read_frame(info.path, name)
        if frame is not None and np.asarray(frame).ndim == 2:
            frame = np.asarray(frame)
            top = full_scale_from_snapshot(info.path, frame.dtype)
            self.frame_view.show_frame(
                frame,
                {
                    "full_scale": top,
                    "saturated": int(np.count_nonzero(frame >= top)) if top is not None else 0,
                },
            )

    def _show_report(self) -> None:
        """The procedure's own report (``labpnn report``), drawn when its tab is open."""
        if self.tabs.currentIndex() != 0 or not self.shown:
            return
        path = Path(self.shown[0])
        info = self.infos.get(str(path))
        if info is not None and info.status == "running":
            self.report.setText("the report is drawn once the run has ended")
            return
        png = Path(self._reports.name) / f"{path.stem}-{path.stat().st_mtime_ns}.png"
        if not png.exists():
            try:
                from labpnn.reports import make_report

                make_report(path, png)
            except Exception as exc:  # a report is a convenience; say why it is missing
                self.report.setText(f"no report: {type(exc).__name__}: {exc}")
                return
        self.report.set_image(QPixmap(str(png)))

    def _rerun(self) -> None:
        if self.shown:
            info = read_info(self.shown[0], columns=False, log=False)
            self.rerun_requested.emit(info)


def full_scale_from_snapshot(path: Path, dtype: np.dtype) -> float | None:
    """The camera's saturation level at the time of the run (pixel format in the snapshot)."""
    for values in snapshot_values(read_snapshot(path)).values():
        fmt = str(values.get("pixel_format") or "")
        digits = "".join(c for c in fmt if c.isdigit())
        if digits:
            return float(2 ** int(digits) - 1)
    return float(np.iinfo(dtype).max) if dtype.kind in "iu" else None


def _has_own_report(procedure: str) -> bool:
    try:
        from labpnn.catalog import procedure_class

        return hasattr(procedure_class(procedure), "plot_report")
    except Exception:
        return False
