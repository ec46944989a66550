"""One self-describing HDF5 file per run, written crash-safe with SWMR.

Layout (``format_version`` 1)::

    /                 attrs: procedure, parameters (JSON), status, times, versions,
                      station snapshot (JSON), simulated + simulator seed, note, tags...
    /results/<col>    one resizable 1-D dataset per scalar column (step, loss, ...)
    /frames/<name>    N x H x W camera frames, with /frames/<name>_t timestamps (s)
                      (and /frames/<name>_exposure_s, each frame's exposure, where given)
    /traces/<name>    N x ... traces (VNA sweeps, audio), with /traces/<name>_t
                      (and /traces/<name>_x, its x values with a unit, if the run set one)
                      A stream's attrs say what it holds (``unit``, ``description``...);
                      every ``*_t`` has ``unit="s"`` and ``clock`` (a name in ``CLOCKS``:
                      "unix" epoch seconds, or "bench", the station's own clock)
    /calibration/...  arrays a calibration produced (e.g. the TM)
    /checkpoints/latest   tensors as datasets (never pickle) + attrs (JSON meta)
    /log              compound (t, level, message): the run's log
    /summary          attrs: headline metrics, one vocabulary (see DESIGN.md); a procedure
                      may describe them in /summary/units and /summary/description (attrs
                      named like the metrics), and its /results columns in their own
                      ``units`` and ``description`` attrs
    /safe_state       attrs: per instrument, whether safe_state() succeeded

Why SWMR with a flush after every append: in our crash tests that was the only mode
whose files survived ``kill -9`` and stayed readable while being written. SWMR forbids
creating objects or changing attributes while it is on, so structural changes close
the file cleanly, reopen it, make the change and switch SWMR back on. They are rare
(the first append to a new stream, a checkpoint, the end of the run).
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from labpnn import FORMAT_VERSION
from labpnn.errors import BadInput

# The clocks a stream's time stamps (``<name>_t``) can be on: the ``clock`` attribute names
# one, the ``description`` attribute says what its seconds are.
CLOCKS = {
    "unix": "wall-clock seconds since 1970-01-01 UTC (time.time()) when the writer got the row",
    "bench": (
        "the station's clock (labpnn.clock), s: on a simulated station in fast mode the "
        "simulated world's time, s since the world started; on hardware and in real-time "
        "simulation time.monotonic() of the run's computer (arbitrary origin). Only "
        "differences within one run mean anything; NaN where the bench gave no time"
    ),
}
# Datasets beside a stream in /frames or /traces that describe its rows or its axis.
SIBLING_SUFFIXES = ("_t", "_x", "_exposure_s")

LOG_DTYPE = np.dtype([("t", "f8"), ("level", "S8"), ("message", "S480")])
STATUSES = ("queued", "running", "completed", "aborted", "failed", "crashed", "missed")


def now_iso() -> str:
    return iso_time(time.time())


def iso_time(t: float) -> str:
    """Epoch seconds as the run files write times: local ISO 8601 with its UTC offset."""
    return _dt.datetime.fromtimestamp(t, _dt.UTC).astimezone().isoformat(timespec="milliseconds")


def _to_attr(value: Any) -> Any:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=_json_default)
    if value is None:
        return ""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (Path, _dt.datetime)):
        return str(obj)
    return repr(obj)


def _locked(method: Callable) -> Callable:
    """Serialise writer calls: log records may arrive from instrument threads."""

    @functools.wraps(method)
    def wrapper(self: RunWriter, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


class RunWriter:
    """Appends a run's data; every append is flushed, fsync every few seconds.

    HDF5's own file locking is off for writer and readers alike: a reader's lock would
    make the writer's next reopen fail, and one writer per file is already guaranteed
    by the run's lock in the state directory.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        attrs: Mapping[str, Any],
        fsync_interval_s: float = 2.0,
    ):
        import h5py

        self._h5py = h5py
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync_interval_s = fsync_interval_s
        self._last_fsync = time.monotonic()
        self._summary: dict[str, Any] = {}
        self._cache: dict[str, Any] = {}
        self._clocks: dict[str, str] = {}  # stream -> the clock of its time stamps
        self._closed = False
        self._lock = threading.RLock()
        # Live viewers (the GUI's loopback channel) subscribe here: (kind, name, payload).
        self.listeners: list[Callable[[str, str, Any], None]] = []
        f = h5py.File(self.path, "w-", libver="latest", locking=False)
        try:
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["status"] = "running"
            f.attrs["start_time"] = now_iso()
            for key, value in attrs.items():
                f.attrs[key] = _to_attr(value)
            for group in ("results", "frames", "traces", "calibration", "checkpoints"):
                f.create_group(group)
            f.create_group("summary")
            f.create_dataset("log", shape=(0,), maxshape=(None,), dtype=LOG_DTYPE, chunks=(64,))
            f.swmr_mode = True
            f.flush()
        except BaseException:
            f.close()
            raise
        self.f = f

    # -- internals -----------------------------------------------------------------
    def _restructure(self, change: Callable[[Any], None]) -> None:
        """Close cleanly, reopen without SWMR, change the structure, resume SWMR."""
        self.f.flush()
        self.f.close()
        self._cache.clear()
        self.f = self._h5py.File(self.path, "r+", libver="latest", locking=False)
        try:
            change(self.f)
        finally:
            self.f.swmr_mode = True
            self.f.flush()

    def _dataset(
        self, name: str, tail: tuple[int, ...], dtype: Any, attrs: Mapping[str, Any] | None = None
    ) -> Any:
        """The resizable dataset ``name``; created (with ``attrs``) on its first append."""
        ds = self._cache.get(name)
        if ds is None:
            if name not in self.f:
                chunk_rows = max(1, min(1024, (1 << 20) // max(1, int(np.prod(tail)) * 8)))

                def create(f: Any) -> None:
                    f.create_dataset(
                        name,
                        shape=(0, *tail),
                        maxshape=(None, *tail),
                        dtype=dtype,
                        chunks=(chunk_rows, *tail),
                    )
                    for key, value in (attrs or {}).items():
                        f[name].attrs[key] = _to_attr(value)

                self._restructure(create)
            ds = self._cache[name] = self.f[name]
        return ds

    def _append(self, name: str, rows: np.ndarray, attrs: Mapping[str, Any] | None = None) -> None:
        ds = self._dataset(name, rows.shape[1:], rows.dtype, attrs)
        if ds.shape[1:] != rows.shape[1:]:
            raise ValueError(f"{name}: rows of shape {rows.shape[1:]} do not fit {ds.shape[1:]}")
        n = ds.shape[0]
        ds.resize(n + len(rows), axis=0)
        ds[n:] = rows

    def _notify(self, kind: str, name: str, payload: Any) -> None:
        for listener in self.listeners:
            try:
                listener(kind, name, payload)
            except Exception:  # a viewer must never break the run
                pass

    def _committed(self) -> None:
        self.f.flush()
        if time.monotonic() - self._last_fsync >= self.fsync_interval_s:
            self.sync()

    @_locked
    def sync(self) -> None:
        """Push the flushed data from the OS cache to disk."""
        self.f.flush()
        try:
            os.fsync(self.f.id.get_vfd_handle())
        except (OSError, TypeError, ValueError):
            pass
        self._last_fsync = time.monotonic()

    # -- appends ---------------------------------------------------------------------
    @_locked
    def append_row(self, group: str = "results", **values: Any) -> None:
        """One row of scalar columns, e.g. ``append_row(epoch=3, loss=0.2)``."""
        for key, value in values.items():
            arr = np.asarray(value)
            if arr.dtype.kind in "biuf":
                arr = arr.astype(np.float64 if arr.dtype.kind == "f" else np.int64)
            self._append(f"{group}/{key}", arr.reshape(1, *arr.shape))
        self._committed()
        self._notify("row", group, values)

    def append_frame(
        self,
        name: str,
        frame: np.ndarray,
        t: float | None = None,
        clock: str = "unix",
        exposure_s: float | None = None,
        **attrs: Any,
    ) -> None:
        """One frame; see :meth:`append_frames`."""
        self.append_frames(
            name, np.asarray(frame)[None], None if t is None else [t], clock, exposure_s, **attrs
        )

    @_locked
    def append_frames(
        self,
        name: str,
        frames: np.ndarray,
        t: Any = None,
        clock: str = "unix",
        exposure_s: Any = None,
        **attrs: Any,
    ) -> None:
        """Frames ``[N, H, W]`` into ``/frames/<name>``, with their time stamps.

        ``t``: one time per frame on ``clock`` (see :data:`CLOCKS`); the default is now, on
        the unix clock. ``exposure_s`` (one value, or one per frame) goes into
        ``/frames/<name>_exposure_s``: give it on every append of a stream or on none.
        ``attrs`` describe the stream (``unit``, ``description``...); they are written when
        the stream is created, by its first append.
        """
        frames = np.asarray(frames)
        stream = f"frames/{name}"
        times = self._times(stream, len(frames), t, clock)
        exposures = self._exposures(stream, len(frames), exposure_s)
        self._append(stream, frames, attrs)
        self._append_times(stream, times, clock)
        if exposures is not None:
            self._append(
                f"{stream}_exposure_s",
                exposures,
                {"unit": "s", "description": f"camera exposure time of each frame of {name}"},
            )
        self._committed()
        self._notify("frame", name, frames[-1])

    @_locked
    def append_trace(
        self,
        name: str,
        trace: np.ndarray,
        t: float | None = None,
        clock: str = "unix",
        **attrs: Any,
    ) -> None:
        """One trace into ``/traces/<name>``; ``t``, ``clock`` and ``attrs`` as for frames."""
        trace = np.asarray(trace)
        stream = f"traces/{name}"
        times = self._times(stream, 1, None if t is None else [t], clock)
        self._append(stream, trace[None], attrs)
        self._append_times(stream, times, clock)
        self._committed()
        self._notify("trace", name, trace)

    # -- time stamps and exposures of a stream's rows ------------------------------------
    def _times(self, stream: str, n: int, t: Any, clock: str) -> np.ndarray:
        """``n`` time stamps on ``clock``, checked before anything of the rows is written."""
        if clock not in CLOCKS:
            raise ValueError(f"{stream}: clock={clock!r} is not one of {sorted(CLOCKS)}")
        if stream not in self._clocks and f"{stream}_t" in self.f:
            self._clocks[stream] = attr_value(self.f[f"{stream}_t"].attrs.get("clock", ""))
        held = self._clocks.get(stream)
        if held and held != clock:  # a file from before clocks were named has ""
            raise ValueError(
                f"{stream}_t holds time stamps on the {held!r} clock; rows on the {clock!r} "
                "clock cannot join them (give the same clock, or use another stream name)"
            )
        if t is None:
            if clock != "unix":
                raise ValueError(f"{stream}: give the time stamps t on the {clock!r} clock")
            return np.full(n, time.time())
        times = np.asarray(t, dtype=float).reshape(-1)
        if len(times) != n:
            raise ValueError(f"{stream}: {len(times)} time stamps for {n} rows")
        return times

    def _append_times(self, stream: str, times: np.ndarray, clock: str) -> None:
        name = stream.split("/", 1)[1]
        attrs = {
            "unit": "s",
            "clock": clock,
            "description": f"time stamp of each row of {name} on the {clock} clock: {CLOCKS[clock]}",
        }
        self._append(f"{stream}_t", times, attrs)
        self._clocks[stream] = clock

    def _exposures(self, stream: str, n: int, exposure_s: Any) -> np.ndarray | None:
        """Per-frame exposures, or None; refuses to leave a stream's exposures incomplete."""
        if stream in self.f and (f"{stream}_exposure_s" in self.f) != (exposure_s is not None):
            had = "has" if exposure_s is None else "has no"
            raise ValueError(
                f"{stream} {had} per-frame exposures: give exposure_s on every append or none"
            )
        if exposure_s is None:
            return None
        return np.broadcast_to(np.asarray(exposure_s, dtype=float).reshape(-1), (n,)).copy()

    def set_trace_axis(self, name: str, x: Any, unit: str) -> None:
        """The x values of trace ``name`` (e.g. the sweep's frequencies), for readers and the GUI.

        Written once as ``traces/<name>_x`` with its ``unit``; a trace of another length is
        still stored, it is just not plotted against this axis.
        """
        x = np.asarray(x, dtype=float).reshape(-1)
        self.write_array(
            f"traces/{name}_x", x, unit=unit, description=f"x value of each point of a {name} row"
        )
        self._notify("trace_axis", name, (x, unit))

    @_locked
    def log(self, level: str, message: str) -> None:
        row = np.zeros(1, dtype=LOG_DTYPE)
        row["t"] = time.time()
        row["level"] = level.encode()[:8]
        row["message"] = message.encode("utf-8", "replace")[:480]
        self._append("log", row)
        self._committed()

    # -- structural writes -------------------------------------------------------------
    @_locked
    def write_array(self, name: str, array: Any, **attrs: Any) -> None:
        """A whole array, e.g. ``write_array("calibration/tm", tm, unit="a.u.")``."""
        array = np.asarray(array)

        def change(f: Any) -> None:
            if name in f:
                del f[name]
            ds = f.create_dataset(name, data=array)
            for key, value in attrs.items():
                ds.attrs[key] = _to_attr(value)

        self._restructure(change)

    @_locked
    def set_attrs(self, name: str = "/", **attrs: Any) -> None:
        def change(f: Any) -> None:
            node = f.require_group(name) if name not in f else f[name]
            for key, value in attrs.items():
                node.attrs[key] = _to_attr(value)

        self._restructure(change)

    @_locked
    def describe(self, attrs_by_node: Mapping[str, Mapping[str, Any]]) -> None:
        """Attributes for several nodes in one structural change, e.g. units of columns.

        ``{"results/loss": {"units": "1", "description": "..."}}``. A dataset that does not
        exist yet is skipped; a missing group is created.
        """

        def change(f: Any) -> None:
            for name, attrs in attrs_by_node.items():
                if name in f:
                    node = f[name]
                elif name.split("/", 1)[0] == "results":
                    continue  # a column not written yet
                else:
                    node = f.require_group(name)
                for key, value in attrs.items():
                    node.attrs[key] = _to_attr(value)

        self._restructure(change)

    def describe_summary(self, docs: Mapping[str, tuple[str, str]]) -> None:
        """Units and descriptions of ``/summary`` keys, ``{key: (units, description)}``, as
        ``/summary/units`` and ``/summary/description`` attributes named like the keys."""
        self.describe(
            {
                "summary/units": {key: units for key, (units, _) in docs.items()},
                "summary/description": {key: text for key, (_, text) in docs.items()},
            }
        )

    @_locked
    def set_summary(self, **metrics: Any) -> None:
        """Headline metrics; written into ``/summary`` now and again at the end."""
        self._summary.update(metrics)
        self.set_attrs("summary", **metrics)

    @_locked
    def checkpoint(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        """Replace ``/checkpoints/latest`` with these tensors (datasets, not pickle)."""

        def change(f: Any) -> None:
            group = f["checkpoints"]
            if "latest" in group:
                del group["latest"]
            latest = group.create_group("latest")
            for key, value in arrays.items():
                latest.create_dataset(key.replace("/", "|"), data=np.asarray(value))
            latest.attrs["meta"] = json.dumps(meta, default=_json_default)
            latest.attrs["time"] = now_iso()

        self._restructure(change)
        self.sync()

    @_locked
    def finish(
        self,
        status: str,
        error: str | None = None,
        safe_state: Mapping[str, str] | None = None,
        **attrs: Any,
    ) -> None:
        if self._closed:
            return
        assert status in STATUSES, status

        def change(f: Any) -> None:
            f.attrs["status"] = status
            f.attrs["end_time"] = now_iso()
            f.attrs["error"] = error or ""
            for key, value in attrs.items():
                f.attrs[key] = _to_attr(value)
            for key, value in self._summary.items():
                f["summary"].attrs[key] = _to_attr(value)
            if safe_state is not None:
                group = f.require_group("safe_state")
                for role, outcome in safe_state.items():
                    group.attrs[role] = outcome
                group.attrs["all_safe"] = all(v == "ok" for v in safe_state.values())

        self.f.flush()
        self.f.close()
        with self._h5py.File(self.path, "r+", libver="latest", locking=False) as f:
            change(f)
            f.flush()
        self._closed = True

    @_locked
    def close(self) -> None:
        if not self._closed:
            self.f.close()
            self._closed = True


# -- reading -------------------------------------------------------------------------
def stream_names(group: Any) -> list[str]:
    """The data streams of ``/frames`` or ``/traces``, without the datasets that sit beside
    them in the same group (``SIBLING_SUFFIXES``: time stamps, axes, exposures)."""
    return [name for name in group if not name.endswith(SIBLING_SUFFIXES)]


class UnreadableRunFile(BadInput):
    """An HDF5 run file HDF5 will not open, e.g. killed inside a structural change."""


def open_run(path: str | os.PathLike) -> Any:
    """Open a run file for reading, also while it is written or after its writer died.

    A file closed cleanly (superblock flags 0) has no writer, so it is opened plainly:
    that open notices a truncated file, whereas a SWMR open skips the check and then
    retries reads past the end for ever (``labpnn show`` hung). A file still flagged
    "open for writing" (a live or killed writer) is opened with SWMR, unless it is shorter
    than the end its superblock records even after its writer had time to catch up; its
    metadata reads retry at most SWMR_READ_ATTEMPTS times, so a read never hangs.
    """
    import h5py

    # locking=False: HDF5's file lock held by a reader would make the writer's next
    # structural change (new stream, checkpoint, end record) fail and kill the run.
    plain = dict(locking=False)
    extent = _superblock_extent(path)
    if extent is not None and extent[0] != 0 and _stays_short(path, extent[1]):
        raise _truncated(path, extent[1])
    attempts = [plain] if extent is not None and extent[0] == 0 else [None, plain]
    for i, options in enumerate(attempts):
        try:
            return _open_swmr_read(path) if options is None else h5py.File(path, "r", **options)
        except OSError as exc:
            if i + 1 < len(attempts):
                continue
            if not os.path.exists(path):
                raise BadInput(f"{path}: no such run file") from None
            if not h5py.is_hdf5(path):
                raise BadInput(f"{path} is not an HDF5 file, so not a labpnn run file") from None
            # read the superblock again: a live writer may have moved the end meanwhile
            now = _superblock_extent(path) if "truncated file" in str(exc) else None
            if now is not None and os.path.getsize(path) < now[1]:
                raise _truncated(path, now[1]) from None
            raise UnreadableRunFile(
                f"{path} cannot be opened ({exc}); if its run was killed, `labpnn repair` "
                "rewrites it in place into a clean file"
            ) from None
    raise AssertionError("unreachable")


# A SWMR reader retries a metadata read whose checksum fails, sleeping 1 ns, then 2, 4, 8 ...
# ns, up to HDF5's default of 100 attempts: past about 40 each sleep is minutes, so a reader
# whose cached metadata went stale while the writer restructured the file (close, reopen
# without SWMR: RunWriter._restructure) hung for ever inside HDF5 (a GUI poll did, under
# load), where no Python signal or timeout reaches it. 24 attempts bound the wait to about
# 17 ms; the read then fails (h5py raises KeyError or OSError: "incorrect metadata checksum
# after all read attempts") and the reader opens afresh next time.
SWMR_READ_ATTEMPTS = 24


def _open_swmr_read(path: str | os.PathLike) -> Any:
    """``h5py.File(path, "r", libver="latest", swmr=True, locking=False)``, with the
    metadata read attempts bounded (SWMR_READ_ATTEMPTS), which h5py has no keyword for."""
    import h5py

    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    fapl.set_libver_bounds(h5py.h5f.LIBVER_LATEST, h5py.h5f.LIBVER_LATEST)
    fapl.set_file_locking(False, False)  # as h5py's locking=False
    bound_read_attempts(fapl, SWMR_READ_ATTEMPTS)
    flags = h5py.h5f.ACC_RDONLY | h5py.h5f.ACC_SWMR_READ
    return h5py.File(h5py.h5f.open(os.fsencode(path), flags, fapl=fapl))


def bound_read_attempts(fapl: Any, attempts: int) -> bool:
    """Set H5Pset_metadata_read_attempts on an h5py file-access property list.

    h5py does not wrap that call, so it goes through ctypes into the HDF5 library h5py
    itself loaded. Returns False (and logs once) where that library cannot be found; the
    file then opens with HDF5's default, as before.
    """
    import ctypes

    import h5py

    setter = hdf5_function("H5Pset_metadata_read_attempts", ctypes.c_int64, ctypes.c_uint)
    if setter is not None:
        with h5py._objects.phil:  # h5py's lock around every HDF5 call (the library is not
            done = setter(fapl.id, attempts) >= 0  # thread-safe)
        if done:
            return True
    if not _warned_unbounded:
        _warned_unbounded.append(True)
        logging.getLogger(__name__).warning(
            "cannot bound HDF5's SWMR read retries (H5Pset_metadata_read_attempts not "
            "found); a reader of a file being restructured may wait a long time"
        )
    return False


_warned_unbounded: list[bool] = []


@functools.cache
def hdf5_function(name: str, *argtypes: Any) -> Any:
    """A C function (returning herr_t) of the libhdf5 h5py uses, or None where not found.

    Looked up through h5py's own extension module, whose handle also searches the libraries
    it links: that finds h5py's copy of HDF5 even where another copy is loaded (PyTables) or
    a second one lies on disk. PyDLL keeps the GIL during the call, as h5py's own calls do.
    """
    import ctypes

    import h5py.h5p

    here = Path(h5py.__file__).parent
    for candidate in (h5py.h5p.__file__, here / "hdf5.dll"):  # the .dll: Windows wheels
        try:
            function = getattr(ctypes.PyDLL(str(candidate)), name)
        except (OSError, AttributeError):
            continue
        function.argtypes = list(argtypes)  # hid_t is int64 since HDF5 1.10
        function.restype = ctypes.c_int
        return function
    return None


def _superblock_extent(path: str | os.PathLike) -> tuple[int, int] | None:
    """(consistency flags, end-of-file address) of a version 2/3 superblock, else None."""
    import struct

    from labpnn.h5clear import SIGNATURE

    try:
        with open(path, "rb") as f:
            head = f.read(12 + 4 * 8)
    except OSError:
        return None
    if head[:8] != SIGNATURE or len(head) < 12 or head[8] < 2 or head[9] != 8:
        return None  # user block, old superblock or odd offsets: let HDF5 judge
    if len(head) < 36:
        return head[11], 36  # shorter than its own superblock
    return head[11], struct.unpack("<Q", head[28:36])[0]


def _stays_short(path: str | os.PathLike, end: int, grace_s: float = 0.5) -> bool:
    """Whether the file stays shorter than ``end``; a live writer extends it meanwhile."""
    deadline = time.monotonic() + grace_s
    while True:
        try:
            if os.path.getsize(path) >= end:
                return False
        except OSError:
            return False  # gone: the open below says so
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.05)


class TruncatedRunFile(UnreadableRunFile):
    """A run file shorter than HDF5 says it is: nothing labpnn can mend."""


def _truncated(path: str | os.PathLike, end: int) -> TruncatedRunFile:
    size = os.path.getsize(path)
    return TruncatedRunFile(
        f"{path} is truncated: {size} of its {end} bytes are there (an interrupted copy or a "
        "full disk). The missing part cannot be repaired; copy the file again from where it "
        "was written"
    )


def attr_value(value: Any) -> Any:
    """An HDF5 attribute as plain Python: text decoded, numpy scalars unboxed, JSON parsed."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def read_run(path: str | os.PathLike, with_columns: bool = True) -> dict[str, Any]:
    """Everything but the bulk arrays, as plain Python: attrs, summary, columns, log."""
    with open_run(path) as f:
        info: dict[str, Any] = {k: attr_value(v) for k, v in f.attrs.items()}
        info["summary"] = (
            {k: attr_value(v) for k, v in f["summary"].attrs.items()} if "summary" in f else {}
        )
        info["safe_state"] = (
            {k: attr_value(v) for k, v in f["safe_state"].attrs.items()}
            if "safe_state" in f
            else {}
        )
        used = f.get("calibrations_used")
        info["calibrations_used"] = (
            {kind: {k: attr_value(v) for k, v in used[kind].attrs.items()} for kind in used}
            if used is not None
            else {}
        )
        if with_columns and "results" in f:
            info["results"] = {k: f["results"][k][()] for k in f["results"]}
        info["frames"] = (
            {k: f["frames"][k].shape for k in stream_names(f["frames"])} if "frames" in f else {}
        )
        info["traces"] = (
            {k: f["traces"][k].shape for k in stream_names(f["traces"])} if "traces" in f else {}
        )
        if "log" in f:
            info["log"] = [
                (float(r["t"]), r["level"].decode(), r["message"].decode("utf-8", "replace"))
                for r in f["log"][()]
            ]
        info["path"] = str(path)
    return info


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    with open_run(path) as f:
        if "checkpoints" not in f or "latest" not in f["checkpoints"]:
            return None
        group = f["checkpoints/latest"]
        arrays = {k.replace("|", "/"): group[k][()] for k in group}
        return arrays, json.loads(group.attrs["meta"])


def repair(path: str | os.PathLike, status: str, error: str = "") -> Path:
    """Rewrite a file whose writer died into a clean, normally openable file.

    The file then says one thing: its status (also a ``/summary`` status left "running" by
    the dead writer) and, when it has none, the ``error`` the ledger knows.
    """
    import h5py

    from labpnn.h5clear import clear_status_flags

    path = Path(path)
    tmp = path.with_suffix(".repair.h5")
    try:
        open_run(path).close()
    except (OSError, UnreadableRunFile):
        # Killed inside a structural change (no SWMR at that instant): the superblock
        # still says "open for writing". Its writer is dead, so clearing it is safe.
        clear_status_flags(path)
    with open_run(path) as src, h5py.File(tmp, "w", libver="latest") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        for name in src:
            src.copy(src[name], dst, name=name)
        dst.attrs["status"] = status
        dst.attrs["repaired_time"] = now_iso()
        if not dst.attrs.get("end_time"):
            dst.attrs["end_time"] = ""
        if error and not dst.attrs.get("error"):
            dst.attrs["error"] = error
        summary = dst.get("summary")
        if summary is not None and attr_value(summary.attrs.get("status")) == "running":
            summary.attrs["status"] = status
    os.replace(tmp, path)
    return path
