"""Clear the "open for write" flags a killed writer leaves in an HDF5 file (``h5clear -s``).

A run file is written with SWMR on, so a ``kill -9`` leaves it readable with
``swmr=True``. But a structural change (a new dataset, a checkpoint, the end record)
closes the file and reopens it *without* SWMR for a moment; a kill in that moment
leaves the superblock saying "open for write, not SWMR", and HDF5 then refuses every
open ("file is already open for write" / "not already open for SWMR writing") although
the data are intact. The HDF5 tool ``h5clear -s`` fixes that, but labs rarely have it
installed, so this module does the same in a few lines: zero the superblock's file
consistency flags and rewrite its checksum (Jenkins lookup3, as HDF5 computes it).

Only superblock versions 2 and 3 (``libver="latest"``, which labpnn writes) carry
these flags. Never call this on a file a live process is writing.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

SIGNATURE = b"\x89HDF\r\n\x1a\n"
_M = 0xFFFFFFFF


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _M


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``, the checksum of HDF5 metadata."""
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & _M
    k = 0
    while length > 12:
        a = (a + int.from_bytes(data[k : k + 4], "little")) & _M
        b = (b + int.from_bytes(data[k + 4 : k + 8], "little")) & _M
        c = (c + int.from_bytes(data[k + 8 : k + 12], "little")) & _M
        a = (a - c) & _M
        a ^= _rot(c, 4)
        c = (c + b) & _M
        b = (b - a) & _M
        b ^= _rot(a, 6)
        a = (a + c) & _M
        c = (c - b) & _M
        c ^= _rot(b, 8)
        b = (b + a) & _M
        a = (a - c) & _M
        a ^= _rot(c, 16)
        c = (c + b) & _M
        b = (b - a) & _M
        b ^= _rot(a, 19)
        a = (a + c) & _M
        c = (c - b) & _M
        c ^= _rot(b, 4)
        b = (b + a) & _M
        length -= 12
        k += 12
    if length == 0:
        return c
    tail = data[k:] + bytes(12 - length)
    a = (a + int.from_bytes(tail[0:4], "little")) & _M
    b = (b + int.from_bytes(tail[4:8], "little")) & _M
    c = (c + int.from_bytes(tail[8:12], "little")) & _M
    for x, y, r in (
        ("c", "b", 14),
        ("a", "c", 11),
        ("b", "a", 25),
        ("c", "b", 16),
        ("a", "c", 4),
        ("b", "a", 14),
        ("c", "b", 24),
    ):
        regs = {"a": a, "b": b, "c": c}
        regs[x] = ((regs[x] ^ regs[y]) - _rot(regs[y], r)) & _M
        a, b, c = regs["a"], regs["b"], regs["c"]
    return c


def _superblock_offset(f) -> int | None:
    """The superblock sits at 0 or at a power of two from 512 (after a user block)."""
    offset = 0
    size = os.fstat(f.fileno()).st_size
    while offset < size:
        f.seek(offset)
        if f.read(8) == SIGNATURE:
            return offset
        offset = 512 if offset == 0 else offset * 2
    return None


def status_flags(path: str | os.PathLike) -> int:
    """The superblock's file consistency flags (0 when closed cleanly)."""
    with open(path, "rb") as f:
        offset = _superblock_offset(f)
        if offset is None:
            raise ValueError(f"{path} is not an HDF5 file")
        f.seek(offset + 8)
        version, _, _, flags = f.read(4)
        return flags if version >= 2 else 0


def clear_status_flags(path: str | os.PathLike) -> bool:
    """Zero the flags if set; return whether anything was changed."""
    path = Path(path)
    with open(path, "r+b") as f:
        offset = _superblock_offset(f)
        if offset is None:
            raise ValueError(f"{path} is not an HDF5 file")
        f.seek(offset)
        head = f.read(12)
        version, size_of_offsets, flags = head[8], head[9], head[11]
        if version < 2 or flags == 0:
            return False
        n = 12 + 4 * size_of_offsets  # signature..root object header address
        f.seek(offset)
        block = bytearray(f.read(n + 4))
        stored = struct.unpack("<I", block[n : n + 4])[0]
        if lookup3(bytes(block[:n])) != stored:
            raise ValueError(f"{path}: the superblock checksum does not match; not touching it")
        block[11] = 0
        block[n : n + 4] = struct.pack("<I", lookup3(bytes(block[:n])))
        f.seek(offset)
        f.write(block)
        f.flush()
        os.fsync(f.fileno())
    return True
