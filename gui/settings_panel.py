"""Every instrument setting with its unit and limits; readable always, settable when connected.

Where the values come from is said above the tree, because it matters: live from the
instruments (the GUI is connected for alignment), from a run's snapshot (taken at the
run's start; the GUI never polls instruments during a run), or from the station
file. A value typed in is checked by the driver's own ``check()`` (capability range
and lab limit) before anything is sent, and a refusal is shown with its reason.
"""

from __future__ import annotations

from typing import Any

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QColor
from PyQt6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

ROLE_DATA = Qt.ItemDataRole.UserRole


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_fmt(v) for v in value) + ")"
    return "" if value is None else str(value)


def _limits(bounds: Any, choices: Any = None) -> str:
    if choices:
        return " | ".join(_fmt(c) for c in choices)
    if bounds:
        return f"{_fmt(bounds[0])} … {_fmt(bounds[1])}"
    return ""


def declared_settings(config: Any) -> dict[str, list[dict[str, Any]]]:
    """Per role, the driver's declared settings with the station's lab limits applied."""
    out: dict[str, list[dict[str, Any]]] = {}
    for role, inst in config.instruments.items():
        rows = []
        try:
            probe = config.settings_probe(role)  # None: the driver declares no settings
            for spec in getattr(probe, "SETTINGS", ()):
                rows.append(
                    {
                        "name": spec.name,
                        "unit": spec.unit,
                        "doc": spec.doc,
                        "limits": _limits(probe.effective_range(spec.name), spec.choices),
                        "settable": spec.settable,
                        "value": inst.settings.get(spec.name),
                    }
                )
        except Exception as exc:  # unknown driver: the station panel explains it
            rows.append(
                {
                    "name": "?",
                    "unit": "",
                    "doc": str(exc),
                    "limits": "",
                    "settable": False,
                    "value": None,
                }
            )
        out[role] = rows
    return out


def snapshot_values(snapshot: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """role -> {setting: value} from a qcodes station snapshot (as stored in run files)."""
    found: dict[str, dict[str, Any]] = {}
    sections = [snapshot]
    if isinstance(snapshot.get("station"), dict):
        sections.append(snapshot["station"])
    for section in sections:
        for key in ("components", "instruments"):
            for role, comp in (section.get(key) or {}).items():
                params = comp.get("parameters") or {}
                values = {n: p.get("value") for n, p in params.items() if isinstance(p, dict)}
                values.pop("IDN", None)
                if values:
                    found.setdefault(role, {}).update(values)
    return found


class SettingsPanel(QWidget):
    """The manual get/set panel; talks to the instruments only through the session."""

    message = pyqtSignal(str, str)  # level, text

    def __init__(self, session: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.config: Any = None
        self._filling = False
        self.source = QLabel("no station")
        self.source.setWordWrap(True)
        self.source.setStyleSheet("color: palette(mid);")
        self.tree = QTreeWidget()
        self.tree.setColumnCount(4)
        self.tree.setHeaderLabels(["Setting", "Value", "Unit", "Limits"])
        self.tree.setAlternatingRowColors(True)
        self.tree.itemChanged.connect(self._edited)
        self.read_button = QPushButton("Read all")
        self.read_button.setToolTip("Read every setting from the instruments (GUI connection)")
        self.read_button.clicked.connect(self.read_all)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        row = QHBoxLayout()
        row.addWidget(self.read_button)
        row.addWidget(self.status, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.source)
        layout.addWidget(self.tree, 1)
        layout.addLayout(row)
        session.connected_changed.connect(self._connection_changed)
        self._connection_changed(False)

    def set_config(self, config: Any) -> None:
        self.config = config
        self._fill(declared_settings(config) if config else {}, {})
        self.source.setText("Values from the station file (connect to read the instruments)")

    def show_snapshot(self, snapshot: dict[str, Any], what: str) -> None:
        if self.config is None or self.session.connected:
            return
        self._fill(declared_settings(self.config), snapshot_values(snapshot))
        self.source.setText(f"Values from {what} (the GUI does not poll instruments in a run)")

    def _fill(self, declared: dict[str, list[dict[str, Any]]], values: dict[str, dict]) -> None:
        self._filling = True
        self.tree.clear()
        editable = self.session.connected
        for role, rows in declared.items():
            top = QTreeWidgetItem([role, "", "", ""])
            font = top.font(0)
            font.setBold(True)
            top.setFont(0, font)
            self.tree.addTopLevelItem(top)
            for row in rows:
                value = values.get(role, {}).get(row["name"], row["value"])
                item = QTreeWidgetItem([row["name"], _fmt(value), row["unit"], row["limits"]])
                item.setData(0, ROLE_DATA, (role, row["name"]))
                item.setToolTip(0, row["doc"])
                if editable and row["settable"]:
                    item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                    item.setForeground(1, QBrush(QColor("#80d8ff")))
                top.addChild(item)
            top.setExpanded(True)
        for col in range(4):
            self.tree.resizeColumnToContents(col)
        self._filling = False

    def _connection_changed(self, connected: bool) -> None:
        self.read_button.setEnabled(connected)
        if connected:
            self.read_all()
        elif self.config is not None:
            self.set_config(self.config)

    def read_all(self) -> None:
        if not self.session.connected:
            return
        values: dict[str, dict[str, Any]] = {}
        problems = []
        for role, rows in declared_settings(self.config).items():
            for row in rows:
                try:
                    values.setdefault(role, {})[row["name"]] = self.session.get_setting(
                        role, row["name"]
                    )
                except Exception as exc:
                    problems.append(f"{role}.{row['name']}: {exc}")
        self._fill(declared_settings(self.config), values)
        self.source.setText(
            "Live values from the instruments (the GUI holds their locks; "
            "double-click a value to set it)"
        )
        self._say(
            "warning" if problems else "info",
            "; ".join(problems[:3]) if problems else "read all settings",
        )

    def _edited(self, item: QTreeWidgetItem, column: int) -> None:
        if self._filling or column != 1 or not self.session.connected:
            return
        role, name = item.data(0, ROLE_DATA)
        text = item.text(1)
        try:
            value = self._parse(role, name, text)
            got = self.session.set_setting(role, name, value)
        except Exception as exc:
            self._say("error", f"refused: {exc}")
            self._filling = True
            try:
                item.setText(1, _fmt(self.session.get_setting(role, name)))
            except Exception:
                pass
            self._filling = False
            return
        self._filling = True
        item.setText(1, _fmt(got))
        self._filling = False
        self._say("info", f"{role}.{name} = {_fmt(got)}")

    def _parse(self, role: str, name: str, text: str) -> Any:
        import yaml

        driver = self.session.station[role]
        spec = driver.setting_spec(name) if hasattr(driver, "setting_spec") else None
        if spec is not None and spec.kind is str:
            return text
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        if spec is not None and spec.kind is tuple and isinstance(value, list):
            value = tuple(value)
        return value

    def _say(self, level: str, text: str) -> None:
        colour = {"error": "#ff6e6e", "warning": "#ffb74d"}.get(level, "palette(mid)")
        self.status.setStyleSheet(f"color: {colour};")
        self.status.setText(text)
        self.message.emit(level, text)
