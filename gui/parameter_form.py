"""A procedure's parameter form, generated from its pymeasure parameters.

Choices, booleans and free text use pymeasure's own input widgets (``ListInput``,
``BooleanInput``, ``StringInput``). Numbers do not: pymeasure's spin boxes silently
clamp an out-of-range entry to the limit, so the operator never learns that the value
was refused. Numbers are plain text fields checked on every keystroke against the
parameter's own limits, with the reason shown under the field, and the run and queue
buttons stay disabled while any field is invalid.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from pymeasure.display.inputs import BooleanInput, ListInput, StringInput
from pymeasure.experiment import (
    BooleanParameter,
    FloatParameter,
    IntegerParameter,
    ListParameter,
)
from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

ERROR_STYLE = "QLineEdit { border: 2px solid #e53935; }"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def limits_text(spec: Any) -> str:
    """e.g. ``4 … 1024, default 256`` for the hint under a field."""
    parts = []
    lo, hi = getattr(spec, "minimum", None), getattr(spec, "maximum", None)
    units = f" {spec.units}" if getattr(spec, "units", None) else ""
    if isinstance(spec, (IntegerParameter, FloatParameter)) and (lo is not None or hi is not None):
        parts.append(f"{_fmt(lo)} … {_fmt(hi)}{units}")
    if spec.default is not None:
        parts.append(f"default {_fmt(spec.default)}{units}")
    return ", ".join(parts)


def check_number(key: str, spec: Any, text: str) -> tuple[Any, str]:
    """(value, "") if ``text`` is acceptable for ``spec``, else (None, the reason)."""
    text = text.strip()
    units = f" {spec.units}" if getattr(spec, "units", None) else ""
    if not text:
        return None, f"{key} needs a value"
    if units and text.endswith(units.strip()):
        text = text[: -len(units.strip())].strip()
    try:
        number = float(text)
    except ValueError:
        return None, f"{key}='{text}' is not a number"
    if not math.isfinite(number):
        return None, f"{key}={text} is not a finite number"
    if isinstance(spec, IntegerParameter):
        if number != int(number):
            return None, f"{key}={text} must be a whole number"
        number = int(number)
    lo, hi = getattr(spec, "minimum", None), getattr(spec, "maximum", None)
    if lo is not None and number < lo:
        return None, f"{key}={_fmt(number)}{units} is below the minimum {_fmt(lo)}{units}"
    if hi is not None and number > hi:
        return None, f"{key}={_fmt(number)}{units} is above the maximum {_fmt(hi)}{units}"
    probe = copy.deepcopy(spec)
    try:
        probe.value = number
    except (ValueError, TypeError) as exc:
        return None, f"{key}={_fmt(number)}: {exc}"
    return probe.value, ""


class NumberInput(QLineEdit):
    """A number field that explains why a value is refused."""

    def __init__(self, key: str, spec: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.key, self.spec = key, spec
        self.error = ""
        if spec.default is not None:
            self.setText(_fmt(spec.default))
        self.setPlaceholderText(limits_text(spec))
        self.setToolTip(spec._cli_help_fields())

    def value(self) -> Any:
        value, self.error = check_number(self.key, self.spec, self.text())
        return value


class ParameterForm(QWidget):
    """Inputs for one procedure class; ``values()`` and ``errors()`` for the launcher."""

    validity_changed = pyqtSignal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.procedure_class: Any = None
        self.inputs: dict[str, Any] = {}
        self.error_labels: dict[str, QLabel] = {}
        self.specs: dict[str, Any] = {}
        self._layout = QFormLayout()
        self._layout.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        # Labels above their inputs: the launch dock is narrow and the labels are sentences, so
        # side by side the inputs ended up beyond the dock's right edge.
        self._layout.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapAllRows)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addLayout(self._layout)
        outer.addStretch(1)

    def set_procedure(self, procedure_class: Any) -> None:
        while self._layout.rowCount():
            self._layout.removeRow(0)
        self.inputs.clear()
        self.error_labels.clear()
        self.procedure_class = procedure_class
        self.specs = dict(procedure_class.parameter_specs()) if procedure_class else {}
        for key, spec in self.specs.items():
            widget = self._make_input(key, spec)
            self.inputs[key] = widget
            error = QLabel("")
            error.setStyleSheet("color: #ff6e6e;")
            error.setWordWrap(True)
            error.setVisible(False)
            self.error_labels[key] = error
            hint = QLabel(limits_text(spec))
            hint.setStyleSheet("color: palette(mid); font-size: 9pt;")
            box = QWidget()
            col = QVBoxLayout(box)
            col.setContentsMargins(0, 0, 0, 0)
            col.setSpacing(1)
            # the hint beside its field: two lines per parameter, not three, in a narrow dock
            row = QHBoxLayout()
            row.setSpacing(6)
            row.addWidget(widget, 1)
            if hint.text() and not isinstance(spec, (BooleanParameter, ListParameter)):
                row.addWidget(hint)
            col.addLayout(row)
            col.addWidget(error)
            label = QLabel(spec.name + (f" [{spec.units}]" if getattr(spec, "units", None) else ""))
            label.setToolTip(key)
            label.setWordWrap(True)
            # one spanning row holding label and field: as a form label, a wrapped label kept
            # QFormLayout's narrow label column (about 200 px) even with the dock wider
            entry = QWidget()
            stack = QVBoxLayout(entry)
            stack.setContentsMargins(0, 0, 0, 2)
            stack.setSpacing(1)
            stack.addWidget(label)
            stack.addWidget(box)
            self._layout.addRow(entry)
        self.revalidate()

    def _make_input(self, key: str, spec: Any) -> QWidget:
        if isinstance(spec, (IntegerParameter, FloatParameter)):
            widget = NumberInput(key, spec)
            widget.textChanged.connect(self.revalidate)
            return widget
        if isinstance(spec, BooleanParameter):
            widget = BooleanInput(copy.deepcopy(spec))
            widget.setText("")
            return widget
        if isinstance(spec, ListParameter):
            return ListInput(copy.deepcopy(spec))
        widget = StringInput(copy.deepcopy(spec))
        if spec.default is not None:
            widget.setText(str(spec.default))
        widget.textChanged.connect(self.revalidate)
        return widget

    # -- reading ------------------------------------------------------------------------
    def _read(self, key: str) -> tuple[Any, str]:
        widget, spec = self.inputs[key], self.specs[key]
        if isinstance(widget, NumberInput):
            value = widget.value()
            return value, widget.error
        raw = widget.value()
        probe = copy.deepcopy(spec)
        try:
            probe.value = raw
        except (ValueError, TypeError) as exc:
            return None, f"{key}={raw!r}: {exc}"
        return probe.value, ""

    def errors(self) -> dict[str, str]:
        out = {}
        for key in self.inputs:
            _, error = self._read(key)
            if error:
                out[key] = error
        return out

    def values(self) -> dict[str, Any]:
        """Every parameter whose field is valid (the invalid ones are in ``errors()``)."""
        out = {}
        for key in self.inputs:
            value, error = self._read(key)
            if not error:
                out[key] = value
        return out

    def changed_values(self) -> dict[str, Any]:
        """Only the parameters that differ from their defaults (keeps commands short)."""
        return {k: v for k, v in self.values().items() if v != self.specs[k].default}

    def is_valid(self) -> bool:
        return not self.errors()

    def revalidate(self) -> None:
        errors = self.errors()
        for key, label in self.error_labels.items():
            message = errors.get(key, "")
            label.setText(message)
            label.setVisible(bool(message))
            widget = self.inputs[key]
            if isinstance(widget, QLineEdit):
                widget.setStyleSheet(ERROR_STYLE if message else "")
        self.validity_changed.emit(not errors)

    # -- writing ------------------------------------------------------------------------
    def set_text(self, key: str, text: str) -> None:
        """Type ``text`` into a field, as an operator would (used by tests and reruns)."""
        widget = self.inputs[key]
        if isinstance(widget, QLineEdit):
            widget.setText(str(text))
        elif isinstance(widget, BooleanInput):
            widget.setChecked(str(text).lower() in ("1", "true", "yes", "on"))
        elif isinstance(widget, ListInput):
            spec = self.specs[key]
            for i, choice in enumerate(spec.choices):
                if str(choice) == str(text):
                    widget.setCurrentIndex(i)
        self.revalidate()

    def set_values(self, values: dict[str, Any]) -> None:
        """Show a run's parameters. A parameter the run does not record (a file from before
        the parameter existed) goes back to its default, not to what the form last showed."""
        for key, spec in self.specs.items():
            value = values.get(key, spec.default)
            if key in self.inputs and value is not None:
                self.set_text(key, _fmt(value) if not isinstance(value, bool) else str(value))
