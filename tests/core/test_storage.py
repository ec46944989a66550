"""The run file: crash-safe appends, self-describing metadata, plain-h5py readability."""

import json

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
        writer.append_frame("camera", np.full((4, 6), i, dtype=np.uint16), t=float(i))
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
