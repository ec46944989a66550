"""The GUI's reads of a live run file never break the run that writes it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from labpnn.gui.run_files import find_run_files, read_info

WRITER = textwrap.dedent("""
    import sys, time
    import numpy as np
    from labpnn.storage import RunWriter
    w = RunWriter(sys.argv[1], {"procedure": "stress", "parameters": {"n": 1}})
    for i in range(120):
        w.append_row(step=i, loss=1.0 / (i + 1))
        if i == 0:
            w.describe({"results/loss": {"units": "1", "description": "a loss"}})
        if i % 6 == 0:  # a new stream and a summary: structural changes (close + reopen)
            w.append_frame(f"cam{i}", np.zeros((8, 8), np.uint16))
            w.set_summary(i=i)
        time.sleep(0.01)
    w.finish("completed", safe_state={"camera": "ok"})
""")


@pytest.mark.timeout(120, method="thread")  # a read stuck inside HDF5 ignores signals
def test_polling_a_file_while_its_writer_restructures_it_never_breaks_the_writer(tmp_path):
    path = tmp_path / "live.h5"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stderr=subprocess.PIPE, text=True
    )
    reads = 0
    while writer.poll() is None:
        if path.exists():
            info = read_info(path)  # what the browser and the watcher do
            reads += not info.error
        time.sleep(0.005)
    assert writer.returncode == 0, writer.stderr.read()
    assert reads > 10
    final = read_info(path)
    assert final.status == "completed"
    assert len(final.columns["loss"]) == 120
    assert final.units == {"loss": "1"}  # step declared none
    assert final.safe_state["all_safe"]
    assert find_run_files(tmp_path) == [path]


def test_the_watcher_hands_on_units_that_arrive_after_a_columns_first_rows(qtbot, tmp_path):
    from labpnn.gui.run_watcher import RunFileWatcher
    from labpnn.storage import RunWriter

    path = tmp_path / "run.h5"
    writer = RunWriter(path, {"procedure": "t", "parameters": {}})
    writer.append_row(iteration=0, psnr_db=25.0)
    watcher = RunFileWatcher(interval_ms=10_000)
    seen = []
    watcher.columns.connect(lambda columns, units: seen.append((set(columns), units)))
    watcher.follow(str(path))
    writer.describe({"results/psnr_db": {"units": "dB"}})
    watcher.refresh()  # no new rows, but new units: handed on
    writer.finish("completed")
    watcher.stop()
    assert seen[0] == ({"iteration", "psnr_db"}, {})
    assert seen[-1] == ({"iteration", "psnr_db"}, {"psnr_db": "dB"})


def test_a_read_that_meets_a_restructure_is_retried_before_it_is_called_unreadable(
    tmp_path, monkeypatch
):
    from labpnn.gui import run_files
    from labpnn.storage import RunWriter

    path = tmp_path / "run.h5"
    RunWriter(path, {"procedure": "t", "parameters": {}}).finish("completed")
    real, calls = run_files._read_info_once, []

    def flaky(*args):  # the first read meets the writer mid-restructure
        calls.append(args)
        info = real(*args)
        if len(calls) == 1:
            info.error = "cannot read run.h5: incorrect metadata checksum"
        return info

    monkeypatch.setattr(run_files, "_read_info_once", flaky)
    monkeypatch.setattr(run_files, "READ_RETRY_S", 0.0)
    info = read_info(path)
    assert not info.error and info.status == "completed" and len(calls) == 2
    calls.clear()
    assert read_info(tmp_path / "gone.h5").error  # a missing file: no retry
    assert len(calls) == 1
