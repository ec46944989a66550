"""One ``labpnn run`` child process, watched from the GUI without blocking it.

Why a detached child with its output in a file (and not a QProcess with pipes): a run
must survive the GUI. If the GUI crashes, a child writing into a broken pipe would
fail at its next print; a child in its own session writing into a log file does not
notice. The GUI only tails the file and polls the exit status on a timer.

Abort: SIGINT (CTRL_BREAK on Windows), which the runner turns into a clean stop with
the safe state written. If after 1 s the process is still running *and* the ledger
does not yet show an end record, the run is stuck (for example blocked in a long
instrument call): the GUI kills it and runs ``labpnn safe-off`` for its station. A child
killed from outside (``kill -9``, the OOM killer) gets the same safe-off before the GUI
reports it crashed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import Any

from PyQt6.QtCore import QObject, QTimer, pyqtSignal

from labpnn import paths
from labpnn.queue import status_of_exit

ABORT_GRACE_S = 1.0
CLOSE_GRACE_S = 20.0


class RunProcess(QObject):
    """A running child; emits its output lines and, once, how it ended."""

    output = pyqtSignal(str)
    ended = pyqtSignal(str, str)  # status, run file path ("" if none)
    safe_off_done = pyqtSignal(int)

    def __init__(
        self,
        cmd: list[str],
        station: str,
        env: dict[str, str] | None = None,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.cmd = cmd
        self.station = station
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.popen: subprocess.Popen | None = None
        self.run_id = ""
        self.path = ""
        self.status = "starting"
        self.started_at = 0.0
        self.killed = False
        self.abort_requested = False
        self.safe_off: subprocess.Popen | None = None
        self._safe_off_started = False
        folder = paths.state_dir() / "gui-runs"
        folder.mkdir(parents=True, exist_ok=True)
        prune_logs(folder)
        self.log_path = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{id(self)}.log"
        self._log_file: Any = None
        self._read_pos = 0
        self._partial = ""
        self._timer = QTimer(self)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._poll)

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        self._log_file = open(self.log_path, "wb")  # noqa: SIM115 (the child writes it)
        kwargs: dict[str, Any] = {}
        if sys.platform == "win32":
            kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP
        else:
            kwargs["start_new_session"] = True  # a Ctrl+C in the GUI's terminal spares runs
        self.popen = subprocess.Popen(
            self.cmd,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            **kwargs,
        )
        self.started_at = time.monotonic()
        self.status = "running"
        self._timer.start()

    @property
    def pid(self) -> int:
        return self.popen.pid if self.popen else 0

    def is_running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def elapsed_s(self) -> float:
        return time.monotonic() - self.started_at if self.started_at else 0.0

    def abort(self) -> None:
        """Ask the run to stop; escalate to kill + safe-off if it is stuck."""
        if not self.is_running():
            return
        self.abort_requested = True
        self._signal_stop()
        self.output.emit("abort requested: the run is stopping at its next step")
        QTimer.singleShot(int(ABORT_GRACE_S * 1000), self._check_abort)

    def _signal_stop(self) -> None:
        with contextlib.suppress(OSError):
            if sys.platform == "win32":
                self.popen.send_signal(signal.CTRL_BREAK_EVENT)
            else:
                self.popen.send_signal(signal.SIGINT)

    def _ledger_says_ended(self) -> bool:
        if not self.run_id:
            return False
        try:
            from labpnn.ledger import Ledger

            ledger = Ledger()
            try:
                row = ledger.run(self.run_id)
            finally:
                ledger.close()
        except Exception:
            return False
        return bool(row) and row["status"] != "running"

    def _check_abort(self) -> None:
        if not self.is_running():
            return
        if self._ledger_says_ended():
            # Safe state and end record are written; the process is only closing down.
            QTimer.singleShot(int(CLOSE_GRACE_S * 1000), self._kill_if_lingering)
            return
        self.output.emit(
            f"the run did not stop within {ABORT_GRACE_S:g} s: killing it and putting "
            f"station '{self.station}' into its safe state (labpnn safe-off)"
        )
        self.kill()
        self.run_safe_off()

    def _kill_if_lingering(self) -> None:
        if self.is_running():
            self.output.emit("the run process did not exit after its end record; killing it")
            self._safe_off_started = True  # its end record says the instruments are safe
            self.kill()

    def kill(self) -> None:
        if self.is_running():
            self.killed = True
            with contextlib.suppress(OSError):
                self.popen.kill()

    def run_safe_off(self) -> None:
        self._safe_off_started = True
        cmd = [sys.executable, "-m", "labpnn.cli", "safe-off", "--station", self.station]
        self.safe_off = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
            stdin=subprocess.DEVNULL,
        )
        self._timer.start()

    # -- watching ------------------------------------------------------------------------
    def _read_output(self) -> None:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._read_pos)
                chunk = f.read()
        except OSError:
            return
        if not chunk:
            return
        self._read_pos += len(chunk)
        text = self._partial + chunk.decode("utf-8", "replace").replace("\r", "\n")
        lines = text.split("\n")
        self._partial = lines.pop()
        for line in lines:
            if line.strip():
                last_word = line.split()[-1]
                if last_word.endswith(".h5") and os.path.isabs(last_word):
                    self.path = last_word
                self.output.emit(line)

    def _poll(self) -> None:
        self._read_output()
        if self.safe_off is not None and self.safe_off.poll() is not None:
            out = self.safe_off.stdout.read() if self.safe_off.stdout else ""
            for line in out.splitlines():
                self.output.emit(f"safe-off: {line}")
            self.output.emit(
                "safe-off finished"
                if self.safe_off.returncode == 0
                else f"safe-off FAILED (exit {self.safe_off.returncode}); check the bench"
            )
            self.safe_off_done.emit(self.safe_off.returncode)
            self.safe_off = None
        running = self.popen is not None and self.popen.poll() is None
        if running or self.safe_off is not None or self.status not in ("running", "starting"):
            return  # the next run may only start once safe-off has left the bench
        status = "crashed" if self.killed else status_of_exit(self.popen.returncode)
        # No end record in the ledger means no safe state either (on Windows a process
        # killed from outside exits with a code >= 0, so the status alone cannot tell)
        died = status == "crashed" or (bool(self.run_id) and not self._ledger_says_ended())
        if died and not self._safe_off_started:
            # Killed from outside (OOM killer, kill -9): it never reached its safe state.
            self.output.emit(
                f"the run process died (exit {self.popen.returncode}) without stopping its "
                f"instruments: putting station '{self.station}' into its safe state "
                "(labpnn safe-off)"
            )
            self.run_safe_off()
            return
        self._timer.stop()
        self._partial += "\n"
        self._read_output()
        with contextlib.suppress(OSError):
            self._log_file.close()
        self.status = status
        if self.status == "crashed":
            self._mark_crashed()
        self.ended.emit(self.status, self.path)

    def _mark_crashed(self) -> None:
        """The killed run cannot write its end record; the ledger learns it now."""
        with contextlib.suppress(Exception):
            from labpnn.ledger import Ledger

            ledger = Ledger()
            try:
                ledger.reap_crashed()
            finally:
                ledger.close()

    def close(self) -> None:
        """Stop watching; the child itself keeps running (runs survive the GUI)."""
        self._timer.stop()
        with contextlib.suppress(Exception):
            self._log_file.close()


def prune_logs(folder: Any, keep_days: float = 30.0) -> None:
    """Forget run-output logs older than ``keep_days`` (the run files keep their own log)."""
    cutoff = time.time() - keep_days * 86400
    for log in folder.glob("*.log"):
        with contextlib.suppress(OSError):
            if log.stat().st_mtime < cutoff:
                log.unlink()
