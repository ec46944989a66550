"""A run's request for the operator ("connect the SHORT standard to port 1") as a dialog.

The dialog is not modal: the live docks keep updating behind it and the operator
can still abort. The run waits for the answer on the loopback channel (see
:func:`labpnn.live.ask_operator`); closing the dialog declines the request.
"""

from __future__ import annotations

import html
from typing import Any

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

SHOWN_KEYS = {"prompt", "text", "title", "choices", "value", "kind"}


class OperatorDialog(QDialog):
    answered = pyqtSignal(object, dict)  # the request message, the answer

    def __init__(self, message: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.message = message
        self.done_once = False
        request: dict[str, Any] = dict(message.header.get("request") or {})
        self.request = request
        self.setWindowTitle(str(request.get("title") or "The run needs you"))
        self.setModal(False)
        self.setMinimumWidth(420)
        text = html.escape(str(request.get("prompt") or request.get("text") or "?"))
        self.prompt = QLabel(f"<h3>{text}</h3>")
        self.prompt.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.prompt)
        details = {k: v for k, v in request.items() if k not in SHOWN_KEYS}
        if details:
            text = "  ·  ".join(f"{k}: {v}" for k, v in details.items())
            extra = QLabel(text)
            extra.setStyleSheet("color: palette(mid);")
            extra.setWordWrap(True)
            layout.addWidget(extra)
        self.value_edit: QLineEdit | None = None
        if "value" in request:
            self.value_edit = QLineEdit(str(request["value"]))
            layout.addWidget(self.value_edit)
        buttons = QDialogButtonBox()
        choices = request.get("choices")
        if isinstance(choices, list) and choices:
            for choice in choices:
                button = QPushButton(str(choice))
                button.clicked.connect(lambda _=False, c=choice: self.answer(True, c))
                buttons.addButton(button, QDialogButtonBox.ButtonRole.AcceptRole)
        else:
            done = buttons.addButton("Done", QDialogButtonBox.ButtonRole.AcceptRole)
            done.setDefault(True)
            done.clicked.connect(lambda: self.answer(True, self._value()))
        cancel = buttons.addButton("Decline", QDialogButtonBox.ButtonRole.RejectRole)
        cancel.clicked.connect(lambda: self.answer(False))
        layout.addWidget(buttons)
        self.setWindowFlag(Qt.WindowType.WindowStaysOnTopHint, True)

    def _value(self) -> Any:
        return self.value_edit.text() if self.value_edit is not None else True

    def answer(self, ok: bool, value: Any = None, **extra: Any) -> None:
        if self.done_once:
            return
        self.done_once = True
        reply = {"ok": ok, "answered_by": "gui", **extra}
        if ok:
            reply["value"] = value
        self.answered.emit(self.message, reply)
        self.close()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 (Qt name)
        if not self.done_once:
            self.done_once = True
            self.answered.emit(self.message, {"ok": False, "answered_by": "gui"})
        super().closeEvent(event)
