"""The procedure launcher: pick a procedure, fill its form, run it now or queue it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from labpnn.gui.parameter_form import ParameterForm


@dataclass
class RunSpec:
    """What the operator asked for: becomes a ``labpnn run`` command or a queue entry."""

    procedure: str
    station: str
    parameters: dict[str, Any] = field(default_factory=dict)
    station_set: list[str] = field(default_factory=list)
    note: str = ""
    tags: list[str] = field(default_factory=list)
    supports_pause: bool = False


def procedure_catalog() -> tuple[dict[str, Any], dict[str, str]]:
    """(name -> class) of the procedures that import, and (name -> why not) of the rest."""
    from labpnn import catalog

    names = (
        sorted(catalog._catalog()) if hasattr(catalog, "_catalog") else sorted(catalog.PROCEDURES)
    )
    found, broken = {}, {}
    for name in names:
        try:
            found[name] = catalog.procedure_class(name)
        except Exception as exc:  # not written yet, or a missing optional dependency
            broken[name] = f"{type(exc).__name__}: {exc}"
    return found, broken


class Launcher(QWidget):
    run_requested = pyqtSignal(object)  # RunSpec
    queue_requested = pyqtSignal(object)
    schedule_requested = pyqtSignal(object)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.station = ""
        self.bench_kind = ""
        self.procedures: dict[str, Any] = {}
        self.unavailable: dict[str, str] = {}
        self.busy = False

        self.combo = QComboBox()
        self.combo.currentTextChanged.connect(self._procedure_changed)
        self.description = QLabel("")
        self.description.setWordWrap(True)
        self.description.setStyleSheet("color: palette(mid);")
        self.form = ParameterForm()
        self.form.validity_changed.connect(self._update_buttons)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.form)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.note = QLineEdit()
        self.note.setPlaceholderText("stored with the run")
        self.tags = QLineEdit()
        self.tags.setPlaceholderText("comma separated")
        self.problem = QLabel("")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #ff6e6e;")
        self.run_button = QPushButton("Run  (Ctrl+R)")
        self.run_button.setObjectName("primary")
        self.run_button.clicked.connect(lambda: self.request(self.run_requested))
        self.queue_button = QPushButton("Add to queue")
        self.queue_button.clicked.connect(lambda: self.request(self.queue_requested))
        self.schedule_button = QPushButton("Schedule…")
        self.schedule_button.setToolTip("Run this every night (or on any cron) with these values")
        self.schedule_button.clicked.connect(lambda: self.request(self.schedule_requested))

        meta = QFormLayout()
        meta.addRow("Note", self.note)
        meta.addRow("Tags", self.tags)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button, 2)
        buttons.addWidget(self.queue_button, 1)
        buttons.addWidget(self.schedule_button, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.combo)
        layout.addWidget(self.description)
        layout.addWidget(scroll, 1)
        layout.addLayout(meta)
        layout.addWidget(self.problem)
        layout.addLayout(buttons)
        self.reload()

    def reload(self) -> None:
        current = self.combo.currentText()
        self.procedures, self.unavailable = procedure_catalog()
        self.combo.blockSignals(True)
        self.combo.clear()
        for name, cls in self.procedures.items():
            kinds = "/".join(getattr(cls, "bench_kinds", ()) or ()) or "any"
            self.combo.addItem(name, name)
            self.combo.setItemData(
                self.combo.count() - 1, f"{kinds} bench", Qt.ItemDataRole.ToolTipRole
            )
        self.combo.blockSignals(False)
        if current in self.procedures:
            self.combo.setCurrentText(current)
        self._procedure_changed(self.combo.currentText())

    def select(self, name: str) -> None:
        if name not in self.procedures:
            known = ", ".join(self.procedures) or "none"
            raise KeyError(f"procedure '{name}' is not available (available: {known})")
        self.combo.setCurrentText(name)
        self._procedure_changed(name)

    def set_station(self, station: str, bench_kind: str) -> None:
        self.station, self.bench_kind = station, bench_kind
        current = self.procedures.get(self.combo.currentText())
        if current is not None and not self._fits(current):
            for name, cls in self.procedures.items():
                if self._fits(cls):
                    self.combo.setCurrentText(name)
                    break
        self._update_buttons()

    def _fits(self, cls: Any) -> bool:
        kinds = getattr(cls, "bench_kinds", ()) or ()
        return not self.bench_kind or not kinds or self.bench_kind in kinds

    def set_busy(self, busy: bool) -> None:
        self.busy = busy
        self._update_buttons()

    def _procedure_changed(self, name: str) -> None:
        cls = self.procedures.get(name)
        self.form.set_procedure(cls)
        if cls is None:
            self.description.setText("no procedures available" if not self.procedures else "")
            self._update_buttons()
            return
        doc = (cls.__doc__ or "").strip()
        first = doc.split("\n\n")[0].replace("\n", " ") if doc else ""
        kinds = "/".join(getattr(cls, "bench_kinds", ()) or ()) or "any"
        pause = "pausable" if getattr(cls, "supports_pause", False) else "no pause"
        self.description.setText(f"{first}\n[{kinds} bench · {pause}]")
        self._update_buttons()

    def _update_buttons(self, *_: Any) -> None:
        cls = self.procedures.get(self.combo.currentText())
        problem = ""
        if cls is None:
            problem = "Pick a procedure."
        elif not self.station:
            problem = "Open a station first."
        elif not self._fits(cls):
            problem = (
                f"{cls.name} runs on {'/'.join(cls.bench_kinds)} benches; this "
                f"station's bench is {self.bench_kind}."
            )
        elif not self.form.is_valid():
            # the fields may be scrolled out of sight: name them
            names = [self.form.specs[k].name for k in self.form.errors()]
            problem = f"Fix the highlighted parameters: {'; '.join(names)}."
        self.problem.setText(problem)
        self.problem.setVisible(bool(problem))
        self.queue_button.setEnabled(not problem)
        self.schedule_button.setEnabled(not problem)
        self.run_button.setEnabled(not problem and not self.busy)
        self.run_button.setToolTip("A run is in progress" if self.busy else "")

    def spec(self) -> RunSpec | None:
        cls = self.procedures.get(self.combo.currentText())
        if cls is None or not self.form.is_valid() or not self.station:
            return None
        tags = [t.strip() for t in self.tags.text().split(",") if t.strip()]
        return RunSpec(
            procedure=self.combo.currentText(),
            station=self.station,
            parameters=self.form.values(),  # all pinned: defaults may change later
            note=self.note.text().strip(),
            tags=tags,
            supports_pause=bool(getattr(cls, "supports_pause", False)),
        )

    def request(self, signal: Any) -> bool:
        self.form.revalidate()
        self._update_buttons()
        spec = self.spec()
        if spec is None:
            return False
        problem = self.refusal(spec)
        if problem:
            # what the run would refuse at its start (n_modes that does not tile the SLM, ...)
            self.problem.setText(problem)
            self.problem.setVisible(True)
            return False
        signal.emit(spec)
        return True

    def refusal(self, spec: RunSpec) -> str:
        """Why ``labpnn run`` would refuse this before starting, or ""."""
        from labpnn.errors import BadInput
        from labpnn.queue import check_entry

        try:
            check_entry(spec.procedure, spec.station, spec.parameters, spec.station_set)
        except BadInput as exc:
            return str(exc)
        except Exception as exc:  # a procedure's own check tripping over a value: say so
            return f"cannot check this run before starting it: {type(exc).__name__}: {exc}"
        return ""
