"""Starts runs as child processes, follows them, and works through the queue.

One run at a time from this window: runs on one bench are sequential by nature (the
instrument locks would refuse a second one anyway), and the live docks show one run.
What the docks get is filtered by run id, so a previous run's late thumbnails never
appear in the next run's view.
"""

from __future__ import annotations

import contextlib
from typing import Any

from PyQt6.QtCore import QObject, QTimer, pyqtSignal

from labpnn import live
from labpnn.gui.live_feed import LiveFeed
from labpnn.gui.operator_dialog import OperatorDialog
from labpnn.gui.run_process import RunProcess
from labpnn.gui.run_watcher import RunFileWatcher
from labpnn.queue import QueueEntry, RunQueue, describe_settled, run_command


class RunController(QObject):
    started = pyqtSignal(object)  # the RunSpec or QueueEntry
    hello = pyqtSignal(dict)
    ended = pyqtSignal(str, str)  # status, run file
    output = pyqtSignal(str)
    message = pyqtSignal(str, str)  # level, text
    progress = pyqtSignal(float)  # 0..1
    paused_changed = pyqtSignal(bool)
    queue_state = pyqtSignal(bool)  # processing or not
    frame = pyqtSignal(str, object, dict)
    trace = pyqtSignal(str, object, dict)
    slm = pyqtSignal(object, dict)
    row = pyqtSignal(str, dict)
    columns = pyqtSignal(dict, dict)  # as RunFileWatcher.columns: rows, units

    def __init__(self, queue: RunQueue, parent: QObject | None = None):
        super().__init__(parent)
        self.queue = queue
        self.feed = LiveFeed(self)
        self.watcher = RunFileWatcher(self)
        self.process: RunProcess | None = None
        self.spec: Any = None
        self.entry: QueueEntry | None = None
        self.run_id = ""
        self.path = ""
        self.paused = False
        self.processing = False
        self.last_error = ""
        self.history: list[tuple[str, str, str]] = []  # (procedure, status, path)
        self._queue_lock: Any = None
        self._dialogs: list[OperatorDialog] = []
        self.feed.hello.connect(self._hello)
        self.feed.frame.connect(lambda n, a, h: self._relay(self.frame, h, n, a, h))
        self.feed.trace.connect(lambda n, a, h: self._relay(self.trace, h, n, a, h))
        self.feed.slm.connect(lambda a, h: self._relay(self.slm, h, a, h))
        self.feed.row.connect(self._row)
        self.feed.operator.connect(self._operator)
        self.watcher.columns.connect(self.columns)
        self._progress_timer = QTimer(self)
        self._progress_timer.setInterval(1000)
        self._progress_timer.timeout.connect(self._poll_progress)

    # -- state ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.process is not None

    def supports_pause(self) -> bool:
        return bool(self.running and getattr(self.spec, "supports_pause", False))

    def _relay(self, signal: Any, header: dict[str, Any], *args: Any) -> None:
        if self.running and header.get("run_id") == self.run_id:
            signal.emit(*args)

    # -- starting ---------------------------------------------------------------------------
    def start(self, spec: Any, entry: QueueEntry | None = None) -> bool:
        """Start ``spec`` (a launcher RunSpec or a queue entry) as a ``labpnn run`` child."""
        if self.running:
            self.message.emit("warning", "a run is already in progress; queue this one instead")
            return False
        cmd = run_command(
            spec.procedure,
            spec.station,
            spec.parameters,
            getattr(spec, "station_set", ()),
            note=spec.note,
            tags=spec.tags,
            started_by="gui",
        )
        process = RunProcess(cmd, spec.station, env={live.LIVE_ENV: self.feed.address}, parent=self)
        process.output.connect(self._output)
        process.ended.connect(self._ended)
        self.process, self.spec, self.entry = process, spec, entry
        self.run_id, self.path, self.paused, self.last_error = "", "", False, ""
        if entry is not None and not hasattr(spec, "supports_pause"):
            with contextlib.suppress(Exception):
                from labpnn.catalog import procedure_class

                spec.supports_pause = bool(procedure_class(spec.procedure).supports_pause)
        try:
            process.start()
        except OSError as exc:
            self.process = None
            self.message.emit("error", f"cannot start the run process: {exc}")
            return False
        self.message.emit("info", "started: " + " ".join(cmd[3:-3]))
        self._progress_timer.start()
        self.started.emit(spec)
        return True

    def _hello(self, header: dict[str, Any]) -> None:
        if not self.running or header.get("pid") != self.process.pid:
            return
        self.run_id = str(header.get("run_id", ""))
        self.path = str(header.get("path", ""))
        self.process.run_id = self.run_id
        self.process.path = self.path
        if self.entry is not None:
            with contextlib.suppress(Exception):
                self.queue.set_run_id(self.entry.id, self.run_id)
        self.watcher.follow(self.path)
        self.hello.emit(header)

    def _row(self, group: str, values: dict[str, Any]) -> None:
        self.row.emit(group, values)

    def _output(self, line: str) -> None:
        if line.startswith("labpnn: run ") or line.startswith("labpnn: error: "):
            self.last_error = line.split(":", 2)[-1].strip()
        self.output.emit(line)

    def _poll_progress(self) -> None:
        if not self.run_id:
            return
        try:
            row = self.queue.ledger.run(self.run_id)
        except Exception:
            return
        if row and row.get("progress") is not None:
            self.progress.emit(float(row["progress"]))

    # -- controlling --------------------------------------------------------------------------
    def abort(self) -> None:
        if not self.running:
            return
        if self.run_id and self.paused:
            live.request_resume(self.run_id)  # a paused run must be able to reach its stop
        for dialog in list(self._dialogs):
            dialog.answer(False, aborted=True)
        self.process.abort()

    def set_paused(self, paused: bool) -> bool:
        """Pause or resume (procedures that declare ``supports_pause`` only)."""
        if not self.supports_pause() or not self.run_id:
            self.message.emit("warning", "this procedure cannot be paused")
            return False
        if paused:
            live.request_pause(self.run_id)
        else:
            live.request_resume(self.run_id)
        self.paused = paused
        self.message.emit(
            "info", "pause requested: the run holds at its next step" if paused else "resumed"
        )
        self.paused_changed.emit(paused)
        return True

    # -- ending ------------------------------------------------------------------------------
    def _ended(self, status: str, path: str) -> None:
        process = self.process
        self.watcher.stop(final_read=True)
        self._progress_timer.stop()
        path = path or self.path
        if self.run_id:
            live.request_resume(self.run_id)  # no stale pause flag
            with contextlib.suppress(Exception):
                row = self.queue.ledger.run(self.run_id)
                if row and row["status"] not in ("running", None):
                    status = row["status"]
        for dialog in list(self._dialogs):
            dialog.done_once = True
            dialog.close()
        self._dialogs.clear()
        if self.entry is not None:
            error = self.last_error if status != "completed" else ""
            with contextlib.suppress(Exception):
                self.queue.finish(self.entry.id, status, self.run_id, error)
        self.history.append((self.spec.procedure, status, path))
        level = "info" if status == "completed" else "warning"
        why = f": {self.last_error}" if status != "completed" and self.last_error else ""
        self.message.emit(
            level, f"{self.spec.procedure}: {status}{why}" + (f" → {path}" if path else "")
        )
        self.process, self.paused = None, False
        if process is not None:
            process.close()
            process.deleteLater()
        self.ended.emit(status, path)
        if self.processing:
            QTimer.singleShot(300, self._next_entry)

    # -- the queue -----------------------------------------------------------------------------
    def start_queue(self) -> bool:
        if self.processing:
            return True
        from labpnn.queue import processing_lock

        lock = processing_lock(wait_s=0.5)  # a reader settling entries holds it an instant
        try:
            lock.__enter__()
        except Exception as exc:
            self.message.emit("error", str(exc))
            self.queue_state.emit(False)
            return False
        self._queue_lock = lock
        self.processing = True
        for entry in self.queue.recover():
            self.message.emit("warning", describe_settled(entry))
        self.queue_state.emit(True)
        if not self.running:
            self._next_entry()
        return True

    def stop_queue(self) -> None:
        """Stop after the current run; what is left stays queued."""
        self.processing = False
        if self._queue_lock is not None:
            with contextlib.suppress(Exception):
                self._queue_lock.__exit__(None, None, None)
            self._queue_lock = None
        self.queue_state.emit(False)

    def _next_entry(self) -> None:
        if not self.processing or self.running:
            return
        entry = self.queue.claim_next()
        if entry is None:
            self.message.emit("info", "the queue is done")
            self.stop_queue()
            return
        if not self.start(entry, entry):
            self.queue.finish(entry.id, "failed", error="could not start the run process")
            QTimer.singleShot(300, self._next_entry)

    # -- operator prompts ------------------------------------------------------------------
    def _operator(self, message: Any) -> None:
        if message.header.get("run_id") not in ("", self.run_id):
            self.feed.reply(
                message,
                {"ok": False, "answered_by": "gui", "reason": "not the run this window follows"},
            )
            return
        dialog = OperatorDialog(message, parent=self.parent())
        dialog.answered.connect(self._answered)
        self._dialogs.append(dialog)
        self.message.emit(
            "warning", "the run asks: " + str(message.header.get("request", {}).get("prompt", ""))
        )
        dialog.show()
        dialog.raise_()

    def _answered(self, message: Any, answer: dict[str, Any]) -> None:
        self.feed.reply(message, answer)
        self._dialogs = [d for d in self._dialogs if d.message is not message]
        self.message.emit("info", f"answered the run: {answer}")

    @property
    def dialogs(self) -> list[OperatorDialog]:
        return list(self._dialogs)

    def close(self) -> None:
        self.stop_queue()
        if self.process is not None:
            self.process.close()
        self.feed.close()
        self.watcher.stop(final_read=False)


def elapsed_text(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h:d}:{m:02d}:{s:02d}" if h else f"{m:d}:{s:02d}"
