"""The run file: crash-safe appends, self-describing metadata, plain-h5py readability."""

import json
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from labpnn.storage import RunWriter, read_checkpoint, read_run, repair


@pytest.fixture
def writer(tmp_path):
    w = RunWriter(tmp_path / "run.h5", {"procedure": "demo", "parameters": {"n": 3}})
    yield w
    w.close()


def test_appends_are_readable_by_a_swmr_reader_while_the_run_writes(writer):
    for i in range(5):
        writer.append_frame(
            "camera", np.full((4, 6), i, dtype=np.uint16), t=float(i), clock="bench"
        )
        writer.append_row(step=i, loss=1.0 / (i + 1))
    # same process as the writer, so the same (disabled) HDF5 file-locking flag
    with h5py.File(writer.path, "r", libver="latest", swmr=True, locking=False) as f:
        frames = f["frames/camera"][()]
        assert frames.shape == (5, 4, 6)
        assert frames[3, 0, 0] == 3
        np.testing.assert_array_equal(f["frames/camera_t"][()], np.arange(5.0))
        np.testing.assert_allclose(f["results/loss"][()], 1.0 / np.arange(1, 6))


def test_finish_writes_status_summary_and_safe_state(writer):
    writer.append_row(step=0)
    writer.set_summary(pearson=0.995, queries=1024)
    writer.log("INFO", "hello")
    writer.finish("completed", safe_state={"slm": "ok", "camera": "ok"})
    with h5py.File(writer.path, "r") as f:  # a normal open works after a clean end
        assert f.attrs["status"] == "completed"
        assert f.attrs["format_version"] == 1
        assert json.loads(f.attrs["parameters"]) == {"n": 3}
        assert f["summary"].attrs["pearson"] == pytest.approx(0.995)
        assert bool(f["safe_state"].attrs["all_safe"])
    info = read_run(writer.path)
    assert info["summary"]["queries"] == 1024
    assert info["log"][0][2] == "hello"


def test_mismatched_frame_shape_is_refused(writer):
    writer.append_frame("camera", np.zeros((4, 6)))
    with pytest.raises(ValueError, match="do not fit"):
        writer.append_frame("camera", np.zeros((5, 6)))


def test_checkpoint_round_trips_tensors_without_pickle(writer):
    arrays = {"layer0/weight": np.arange(6.0).reshape(2, 3), "rng": np.arange(4, dtype=np.uint8)}
    writer.checkpoint(arrays, {"epoch": 7})
    writer.checkpoint({**arrays, "layer0/weight": arrays["layer0/weight"] * 2}, {"epoch": 8})
    got, meta = read_checkpoint(writer.path)
    assert meta == {"epoch": 8}
    np.testing.assert_array_equal(got["layer0/weight"], arrays["layer0/weight"] * 2)
    writer.append_row(step=1)  # SWMR is back on after the structural change
    assert read_run(writer.path)["results"]["step"].tolist() == [1]


def test_repair_turns_an_open_file_into_a_clean_one(tmp_path):
    w = RunWriter(tmp_path / "r.h5", {"procedure": "demo"})
    w.append_frame("camera", np.ones((2, 2)))
    w.set_summary(status="running", epochs=3)  # as a training run keeps it while it runs
    # Simulate a dead writer: copy the file while it is open for SWMR writing.
    import shutil

    shutil.copy(w.path, tmp_path / "dead.h5")
    w.close()
    with pytest.raises(OSError):
        h5py.File(tmp_path / "dead.h5", "r")
    repair(tmp_path / "dead.h5", "crashed", error="the run process died without an end record")
    with h5py.File(tmp_path / "dead.h5", "r") as f:
        assert f.attrs["status"] == "crashed"
        assert f["frames/camera"].shape == (1, 2, 2)
        # the file says one thing: not "crashed" at the root and "running" in its summary
        assert f["summary"].attrs["status"] == "crashed" and f["summary"].attrs["epochs"] == 3
        assert f.attrs["error"] == "the run process died without an end record"


def test_every_time_stamp_says_it_is_in_seconds_and_on_which_clock(writer):
    before = time.time()
    writer.append_frames("camera", np.zeros((2, 3, 3)))
    writer.append_trace("s21", np.zeros(5, complex))
    writer.append_frame("tm", np.zeros((3, 3)), t=12.5, clock="bench")
    with h5py.File(writer.path, "r", libver="latest", swmr=True, locking=False) as f:
        for name in ("frames/camera_t", "traces/s21_t"):
            assert f[name].attrs["unit"] == "s" and f[name].attrs["clock"] == "unix"
            assert "1970" in f[name].attrs["description"]
            assert before <= f[name][0] <= time.time()
        bench = f["frames/tm_t"]
        assert bench.attrs["unit"] == "s" and bench.attrs["clock"] == "bench"
        assert "simulated" in bench.attrs["description"] and bench[()].tolist() == [12.5]


def test_time_stamps_on_two_clocks_never_share_a_dataset(writer):
    writer.append_frame("camera", np.zeros((3, 3)), t=1.0, clock="bench")
    with pytest.raises(ValueError, match="on the 'bench' clock"):
        writer.append_frame("camera", np.zeros((3, 3)))  # now, on the unix clock
    with pytest.raises(ValueError, match="not one of"):
        writer.append_frame("other", np.zeros((3, 3)), t=1.0, clock="world")
    with pytest.raises(ValueError, match="give the time stamps"):
        writer.append_frame("other", np.zeros((3, 3)), clock="bench")
    with pytest.raises(ValueError, match="2 time stamps for 1 rows"):
        writer.append_frames("camera", np.zeros((1, 3, 3)), t=[1, 2], clock="bench")
    info = read_run(writer.path)
    assert info["frames"] == {"camera": (1, 3, 3)}  # the refused rows left nothing behind


def test_per_frame_exposures_sit_beside_the_stream_and_are_not_a_stream(writer):
    writer.append_frames(
        "focus", np.zeros((2, 4, 4), np.uint16), exposure_s=[1e-3, 2e-3],
        unit="ADU (camera counts)", description="raw frames",
    )  # fmt: skip
    writer.append_frame("focus", np.zeros((4, 4), np.uint16), exposure_s=5e-4, unit="ignored")
    with h5py.File(writer.path, "r", libver="latest", swmr=True, locking=False) as f:
        exposure = f["frames/focus_exposure_s"]
        np.testing.assert_allclose(exposure[()], [1e-3, 2e-3, 5e-4])
        assert exposure.attrs["unit"] == "s"
        # the stream's own attrs, written by its first append
        assert f["frames/focus"].attrs["unit"] == "ADU (camera counts)"
        assert f["frames/focus"].attrs["description"] == "raw frames"
    assert read_run(writer.path)["frames"] == {"focus": (3, 4, 4)}
    with pytest.raises(ValueError, match="has per-frame exposures"):
        writer.append_frame("focus", np.zeros((4, 4), np.uint16))
    writer.append_frame("plain", np.zeros((4, 4)))
    with pytest.raises(ValueError, match="has no per-frame exposures"):
        writer.append_frame("plain", np.zeros((4, 4)), exposure_s=1e-3)


def test_summary_keys_get_units_and_descriptions(writer):
    writer.set_summary(exposure_s=0.01, queries=3)
    writer.describe_summary({"exposure_s": ("s", "the chosen exposure"), "queries": ("count", "")})
    writer.finish("completed")
    with h5py.File(writer.path, "r") as f:
        assert f["summary/units"].attrs["exposure_s"] == "s"
        assert f["summary/description"].attrs["exposure_s"] == "the chosen exposure"
        assert f["summary"].attrs["exposure_s"] == pytest.approx(0.01)


def _truncated_copy(source, target, keep=0.5):
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target


@pytest.mark.timeout(30, method="thread")  # an HDF5 retry loop ignores signals
def test_a_truncated_run_file_is_refused_at_once_not_read_for_ever(tmp_path):
    from labpnn.storage import UnreadableRunFile, open_run

    w = RunWriter(tmp_path / "done.h5", {"procedure": "demo"})
    w.append_frames("camera", np.random.default_rng(0).random((50, 32, 32)))
    w.finish("completed")
    w.close()
    cut = _truncated_copy(tmp_path / "done.h5", tmp_path / "cut.h5")
    t0 = time.monotonic()
    for read in (read_run, read_checkpoint, open_run):
        with pytest.raises(UnreadableRunFile, match=r"cut.h5 is truncated: \d+ of its \d+ bytes"):
            read(cut)
    assert time.monotonic() - t0 < 10
    assert read_run(tmp_path / "done.h5")["status"] == "completed"  # the original still reads


@pytest.mark.timeout(30, method="thread")  # an HDF5 retry loop ignores signals
def test_a_truncated_copy_of_a_file_being_written_is_refused_too(tmp_path):
    from labpnn.storage import UnreadableRunFile

    w = RunWriter(tmp_path / "live.h5", {"procedure": "demo"})
    try:
        w.append_frames("camera", np.random.default_rng(0).random((50, 32, 32)))
        cut = _truncated_copy(tmp_path / "live.h5", tmp_path / "cut.h5")  # flags say "open"
        with pytest.raises(UnreadableRunFile, match="is truncated"):
            read_run(cut)
        assert read_run(w.path)["status"] == "running"  # the live file is read with SWMR
    finally:
        w.close()


@pytest.mark.timeout(60)
def test_labpnn_show_and_repair_of_a_truncated_file_exit_with_a_clear_error(tmp_path, labpnn):
    w = RunWriter(tmp_path / "done.h5", {"procedure": "demo"})
    w.append_frames("camera", np.random.default_rng(0).random((50, 32, 32)))
    w.finish("completed")
    w.close()
    cut = _truncated_copy(tmp_path / "done.h5", tmp_path / "cut.h5")
    for command in ("show", "repair"):
        res = labpnn(command, str(cut), timeout=30)
        assert res.returncode == 2, (command, res.stderr)
        assert "is truncated" in res.stderr and "copy the file again" in res.stderr


LIVE_WRITER = """
import sys
from labpnn.storage import RunWriter
w = RunWriter(sys.argv[1], {"procedure": "demo"})
w.append_row(step=0)
print("written", flush=True)
sys.stdin.readline()
w.finish("completed")
w.close()
"""


@pytest.mark.timeout(60)
def test_a_swmr_reader_retries_stale_metadata_a_bounded_number_of_times(tmp_path):
    """HDF5's default (100 attempts, each sleep twice the last) hung a GUI poll for ever when
    the writer restructured the file under it; the bound makes such a read fail and retry."""
    import ctypes

    from labpnn.storage import SWMR_READ_ATTEMPTS, hdf5_function, open_run

    getter = hdf5_function(
        "H5Pget_metadata_read_attempts", ctypes.c_int64, ctypes.POINTER(ctypes.c_uint)
    )
    assert getter is not None, "labpnn cannot reach h5py's libhdf5"

    def attempts(f: h5py.File) -> int:
        value = ctypes.c_uint(0)
        assert getter(f.id.get_access_plist().id, ctypes.byref(value)) >= 0
        return value.value

    # the writer in its own process: in the same one HDF5 hands the reader the writer's file
    path = tmp_path / "run.h5"
    writer = subprocess.Popen(
        [sys.executable, "-c", LIVE_WRITER, str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert writer.stdout.readline().strip() == "written", writer.stderr.read()
        with open_run(path) as live:  # flagged "open for writing": read with SWMR
            assert live.swmr_mode
            assert attempts(live) == SWMR_READ_ATTEMPTS < 100
            assert live["results/step"][()].tolist() == [0]
    finally:
        writer.communicate("finish\n", timeout=30)
    assert writer.returncode == 0
    with open_run(path) as done:  # closed cleanly: a plain open, which never retries
        assert not done.swmr_mode
        assert attempts(done) == 1


KILLED_WRITER = """
import os, sys
import numpy as np
from labpnn.storage import RunWriter
w = RunWriter(sys.argv[1], {"procedure": "demo"})
w.append_row(step=0)
w.append_frame("camera", np.zeros((4, 4), np.uint16))
os._exit(0)  # killed: the file stays flagged "open for writing", so readers use SWMR
"""


@pytest.mark.timeout(60, method="thread")  # the old failure hung inside HDF5, deaf to signals
def test_a_swmr_read_of_metadata_that_never_checks_out_fails_instead_of_hanging(tmp_path):
    from labpnn.storage import open_run, read_run

    path = tmp_path / "killed.h5"
    subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path)], check=True, timeout=60)
    data = bytearray(path.read_bytes())
    headers = [i for i in range(len(data)) if data[i : i + 4] == b"OHDR"]
    assert len(headers) >= 2
    data[headers[1] + 20] ^= 0xFF  # the checksum of an object header below the root fails
    path.write_bytes(bytes(data))

    def walk() -> None:
        with open_run(path) as f:
            f.visititems(lambda name, obj: None)

    with pytest.raises((KeyError, OSError, RuntimeError), match="read attempts"):  # no hang
        walk()
    with pytest.raises((KeyError, OSError, RuntimeError), match="read attempts"):
        read_run(path)
