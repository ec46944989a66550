"""A dark Fusion theme: images and speckle read best on a dark surround, and labs are dim."""

from __future__ import annotations

from typing import Any

import pyqtgraph as pg
from PyQt6.QtCore import Qt
from PyQt6.QtGui import QColor, QPalette
from PyQt6.QtWidgets import QApplication, QTableWidget

BG, BASE, TEXT, ACCENT = "#1e2127", "#16181d", "#d0d4da", "#4fc3f7"

STYLE = f"""
QMainWindow::separator {{ background: #2b2f37; width: 3px; height: 3px; }}
QDockWidget {{ titlebar-close-icon: none; font-weight: bold; }}
QDockWidget::title {{ background: #262a31; padding: 4px 6px; }}
QPushButton {{ padding: 4px 10px; border: 1px solid #3a3f48; border-radius: 4px;
              background: #2b2f37; }}
QPushButton:hover {{ border-color: {ACCENT}; }}
QPushButton:checked {{ background: #1d4e63; border-color: {ACCENT}; }}
QPushButton:disabled {{ color: #5f6570; }}
QPushButton#primary {{ background: #1565c0; border-color: #1e88e5; color: white;
                      font-weight: bold; }}
QPushButton#primary:disabled {{ background: #2b2f37; color: #5f6570; }}
QPushButton#danger {{ background: #8e1c1c; border-color: #e53935; color: white; }}
QPushButton#danger:disabled {{ background: #2b2f37; color: #5f6570; border-color: #3a3f48; }}
QLineEdit, QComboBox, QDoubleSpinBox, QSpinBox {{ padding: 2px 4px; }}
QHeaderView::section {{ background: #262a31; padding: 3px; border: none; }}
QTabBar::tab {{ padding: 5px 14px; }}
QTabBar::tab:selected {{ color: {ACCENT}; }}
QProgressBar {{ border: 1px solid #3a3f48; border-radius: 3px; text-align: center;
               background: #16181d; }}
QProgressBar::chunk {{ background: #1e88e5; }}
QStatusBar QLabel {{ padding: 0 6px; }}
"""


def apply(app: QApplication) -> None:
    app.setStyle("Fusion")
    p = QPalette()
    colours = {
        QPalette.ColorRole.Window: BG,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: BASE,
        QPalette.ColorRole.AlternateBase: "#1b1e23",
        QPalette.ColorRole.ToolTipBase: "#2b2f37",
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: "#2b2f37",
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.BrightText: "#ff5252",
        QPalette.ColorRole.Highlight: "#1e6fa8",
        QPalette.ColorRole.HighlightedText: "white",
        QPalette.ColorRole.Link: ACCENT,
        QPalette.ColorRole.Mid: "#8a8f98",
        QPalette.ColorRole.PlaceholderText: "#6b7280",
    }
    for role, colour in colours.items():
        p.setColor(role, QColor(colour))
    for role in (
        QPalette.ColorRole.Text,
        QPalette.ColorRole.ButtonText,
        QPalette.ColorRole.WindowText,
    ):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#5f6570"))
    app.setPalette(p)
    app.setStyleSheet(STYLE)
    pg.setConfigOptions(background=BASE, foreground=TEXT, antialias=True)


def row_table(columns: list[str], multi: bool = False) -> QTableWidget:
    """A read-only table picked by whole rows: the queue, the schedules, the run browser."""
    table = QTableWidget(0, len(columns))
    table.setHorizontalHeaderLabels(columns)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setStretchLastSection(True)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
    mode = QTableWidget.SelectionMode
    table.setSelectionMode(mode.ExtendedSelection if multi else mode.SingleSelection)
    return table


def selected_key(table: QTableWidget) -> Any:
    """The key (``UserRole`` data of column 0) of a row table's selected row, or None."""
    rows = table.selectionModel().selectedRows() if table.selectionModel() else []
    item = table.item(rows[0].row(), 0) if rows else None
    return item.data(Qt.ItemDataRole.UserRole) if item else None
