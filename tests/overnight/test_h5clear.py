"""labpnn.h5clear computes HDF5's own superblock checksum and leaves clean files alone."""

from __future__ import annotations

import struct

import h5py
import numpy as np
import pytest

from labpnn.h5clear import clear_status_flags, lookup3, status_flags


def test_lookup3_matches_the_checksum_hdf5_wrote(tmp_path):
    for i, shape in enumerate([(3,), (100, 7)]):
        path = tmp_path / f"f{i}.h5"
        with h5py.File(path, "w", libver="latest") as f:
            f["x"] = np.zeros(shape)
        block = path.read_bytes()[:64]
        n = 12 + 4 * block[9]
        assert lookup3(block[:n]) == struct.unpack("<I", block[n : n + 4])[0]


def test_a_cleanly_closed_file_is_left_alone_and_a_text_file_refused(tmp_path):
    path = tmp_path / "clean.h5"
    with h5py.File(path, "w", libver="latest") as f:
        f["x"] = np.arange(3)
    before = path.read_bytes()
    assert status_flags(path) == 0 and clear_status_flags(path) is False
    assert path.read_bytes() == before
    notes = tmp_path / "notes.h5"
    notes.write_text("not hdf5")
    with pytest.raises(ValueError, match="is not an HDF5 file"):
        clear_status_flags(notes)
