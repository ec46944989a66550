"""The ledger under contention: a lock held by another process is a clear error, not a traceback."""

from __future__ import annotations

import sqlite3
import time

import pytest

from labpnn.errors import LabpnnError
from labpnn.ledger import Ledger, LedgerBusy


@pytest.fixture
def ledger(lab_dirs):
    ledger = Ledger(timeout_s=0.2)
    yield ledger
    ledger.close()


def _hold(path):
    """Another process's open write transaction."""
    other = sqlite3.connect(str(path), isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    return other


def test_a_write_to_a_ledger_locked_past_the_timeout_is_a_clear_labpnn_error(ledger):
    other = _hold(ledger.path)
    try:
        t0 = time.monotonic()
        with pytest.raises(LedgerBusy) as caught:
            ledger.start_run(run_id="r1", procedure="demo")
        assert time.monotonic() - t0 < 5  # the configured timeout, not 30 s
        assert isinstance(caught.value, LabpnnError)
        message = str(caught.value)
        assert str(ledger.path) in message and "stayed locked for 0.2 s" in message
        assert "another labpnn process" in message and "Try again" in message
        assert ledger.run("r1") is None  # nothing half-written
    finally:
        other.execute("ROLLBACK")
        other.close()
    ledger.start_run(run_id="r1", procedure="demo")  # free again: the write goes through
    assert ledger.db.execute("SELECT count(*) FROM runs").fetchone()[0] == 1


def test_opening_a_ledger_that_another_process_holds_is_busy_not_a_bad_database(tmp_path):
    path = tmp_path / "ledger.sqlite"
    sqlite3.connect(str(path)).execute("CREATE TABLE t (x)").connection.commit()
    other = _hold(path)  # not yet in WAL mode: switching needs the lock
    try:
        with pytest.raises(LedgerBusy, match="stayed locked for 0.2 s while opening it"):
            Ledger(path, timeout_s=0.2)
    finally:
        other.execute("ROLLBACK")
        other.close()
    Ledger(path, timeout_s=0.2).close()
