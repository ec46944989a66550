"""The loopback channel between a run process and the GUI that started it.

Why a channel at all: the GUI must show a camera at video rate without touching the
instruments (the run owns them) and without re-reading megabytes of HDF5 per frame.
So the run process pushes small thumbnails of what it records, and the GUI reads the
authoritative data from the SWMR run file at its own pace.

Wire format (ZeroMQ, loopback only). The GUI binds a ROUTER socket on
``tcp://127.0.0.1:PORT`` and starts the run with ``LABPNN_LIVE`` set to that address.

* Telemetry, run -> GUI, on a DEALER socket: two frames ``[header, payload]``. The
  header is UTF-8 JSON ``{"v": 1, "type": "frame"|"row"|"trace"|"slm"|"hello",
  "run_id", "name", "t", ...}``; for arrays it also carries ``shape`` and ``dtype``
  and the payload is the raw C-ordered bytes (else it is empty). Frames are
  thumbnails (at most 256 x 256, max-pooled so saturated pixels survive) with
  ``levels`` (min, max of the full frame), ``mean``, ``full_scale`` and ``saturated``
  (pixel count of the full frame). A trace whose run set its axis (``set_trace_axis``, at
  most 4096 points) carries ``x`` and ``x_unit``. Sends never block: a full queue drops the message, and
  frames, traces and SLM patterns are rate-limited (``LABPNN_LIVE_HZ``, default 30).
* Operator requests, run -> GUI -> run, on a REQ socket: one frame of JSON
  ``{"v": 1, "type": "operator", "id", "run_id", "request": {...}}``; the GUI answers
  ``{"v": 1, "type": "operator-reply", "id", "answer": {"ok": bool, "value": ...}}``.
  The ``request`` dict is free-form (``labpnn.operator`` sends e.g. ``{"kind":
  "connect-standard", "standard": "short", "port": 1, "text": ...}``); the GUI shows
  ``title``, ``prompt`` or ``text``, ``choices`` (a list, shown as buttons) and
  ``value`` (a default, shown as an editable field), and lists the other keys.

Pause and resume use a flag file next to the run's lock (``pause_flag``), so they
work the same on Windows, from the GUI and from a terminal.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labpnn.errors import LabpnnError

LIVE_ENV = "LABPNN_LIVE"
RATE_ENV = "LABPNN_LIVE_HZ"
PROTOCOL = 1
MAX_SIDE = 256
SEND_HWM = 16  # messages queued towards the GUI before new ones are dropped
MAX_AXIS_POINTS = 4096  # x values travel as JSON in the header: sweeps, not audio

log = logging.getLogger("labpnn.live")


try:  # one class for "nobody can answer", whichever front end was asked
    from labpnn.operator import OperatorUnavailable
except ImportError:  # pragma: no cover

    class OperatorUnavailable(LabpnnError):  # type: ignore[no-redef]
        """No operator answered: no GUI channel, or nobody clicked within the timeout."""


# -- encoding ------------------------------------------------------------------------
def encode(header: dict[str, Any], array: np.ndarray | None = None) -> list[bytes]:
    header = {"v": PROTOCOL, **header}
    if array is None:
        return [json.dumps(header, default=_json_default).encode(), b""]
    array = np.ascontiguousarray(array)
    header["shape"] = list(array.shape)
    header["dtype"] = array.dtype.str
    return [json.dumps(header, default=_json_default).encode(), array.tobytes()]


def decode(parts: list[bytes]) -> tuple[dict[str, Any], np.ndarray | None]:
    header = json.loads(parts[0])
    if "shape" in header and len(parts) > 1:
        array = np.frombuffer(parts[1], dtype=np.dtype(header["dtype"]))
        return header, array.reshape(header["shape"])
    return header, None


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


# -- thumbnails ----------------------------------------------------------------------
def thumbnail(frame: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """Max-pool a 2-D frame to at most ``max_side`` per axis (saturation stays visible)."""
    frame = np.asarray(frame)
    while frame.ndim > 2:  # a colour frame shows its first channel, a stack its last frame
        frame = frame[..., 0] if frame.shape[-1] in (3, 4) else frame[-1]
    h, w = frame.shape[:2]
    k = max(1, -(-max(h, w) // max_side))
    if k == 1:
        return frame
    hh, ww = h // k * k, w // k * k
    return frame[:hh, :ww].reshape(hh // k, k, ww // k, k).max(axis=(1, 3))


def full_scale_of(camera: Any, dtype: np.dtype) -> float | None:
    """The grey level at which this camera saturates, from the driver or the dtype.

    Asked once per stream (it may read a camera feature), never per frame.
    """

    def read(attr: str) -> Any:
        try:
            return getattr(camera, attr, None) if camera is not None else None
        except Exception:
            return None

    for attr in ("saturation_level", "full_scale", "max_value"):
        value = read(attr)
        if isinstance(value, (int, float)) and value > 0:
            return float(value)
    bits = read("bits") or read("bit_depth")
    if bits is None:
        digits = "".join(c for c in str(read("pixel_format") or "") if c.isdigit())
        bits = int(digits) if digits else None
    if isinstance(bits, int) and 1 <= bits <= 32:
        return float(2**bits - 1)
    if np.issubdtype(dtype, np.integer):
        return float(np.iinfo(dtype).max)
    return None


def _slm_view(pattern: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    pattern = np.asarray(pattern)
    h, w = pattern.shape[:2]
    k = max(1, -(-max(h, w) // max_side))
    return np.ascontiguousarray(pattern[::k, ::k])


# -- the run side -------------------------------------------------------------------
class Publisher:
    """Sends what a run records to the GUI; never blocks and never raises into the run."""

    def __init__(self, address: str, run_id: str, max_hz: float | None = None):
        import zmq

        self._zmq = zmq
        self.run_id = run_id
        self.address = address
        self.min_interval_s = 1.0 / float(max_hz or os.environ.get(RATE_ENV) or 30.0)
        self._ctx = zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.DEALER)
        self._sock.setsockopt(zmq.SNDHWM, SEND_HWM)
        self._sock.setsockopt(zmq.LINGER, 200)
        self._sock.connect(address)
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], float] = {}
        self.full_scale: dict[str, float | None] = {}
        self.trace_axes: dict[str, tuple[list[float], str]] = {}
        self.camera: Any = None
        # the run has recorded a frame, a trace (see instrument_data)
        self.records_frames = self.records_traces = False
        self._pending: dict[str, Any] = {}  # kind -> the newest payload not yet published
        self._pending_lock = threading.Lock()
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None
        self.sent = 0
        self.dropped = 0
        self.closed = False

    def _due(self, key: tuple[str, str]) -> bool:
        now = time.monotonic()
        if now - self._last.get(key, -1e9) < self.min_interval_s:
            return False
        self._last[key] = now
        return True

    def send(self, header: dict[str, Any], array: np.ndarray | None = None) -> bool:
        if self.closed or not self._lock.acquire(blocking=False):
            self.dropped += 1
            return False
        try:
            header = {"run_id": self.run_id, "t": time.time(), **header}
            self._sock.send_multipart(encode(header, array), flags=self._zmq.NOBLOCK)
            self.sent += 1
            return True
        except Exception:  # zmq.Again (GUI slow or gone) or anything else: drop it
            self.dropped += 1
            return False
        finally:
            self._lock.release()

    # the RunWriter listener
    def __call__(self, kind: str, name: str, payload: Any) -> None:
        if kind == "row":
            values = {k: _plain(v) for k, v in dict(payload).items()}
            self.send({"type": "row", "name": name, "values": values})
        elif kind == "frame":
            self.records_frames = True
            if self._due(("frame", name)):
                self.send_frame(name, payload)
        elif kind == "trace_axis":
            x, unit = payload
            self.trace_axes[name] = ([float(v) for v in x], str(unit))
        elif kind == "trace":
            self.records_traces = True
            if self._due(("trace", name)):
                self.send_trace(name, payload, *self.trace_axes.get(name, ((), "")))

    def send_trace(self, name: str, trace: Any, x: Any = (), unit: str = "") -> None:
        trace = np.asarray(trace)
        if np.iscomplexobj(trace):
            trace = trace.astype(np.complex64)
        elif trace.dtype.kind == "f":
            trace = trace.astype(np.float32)
        header: dict[str, Any] = {"type": "trace", "name": name}
        if 0 < len(x) == trace.size <= MAX_AXIS_POINTS:
            header.update(x=[float(v) for v in x], x_unit=unit)
        self.send(header, trace.reshape(-1)[:65536])

    def send_frame(self, name: str, frame: np.ndarray) -> None:
        frame = np.asarray(frame)
        if frame.ndim < 2:
            return
        if name not in self.full_scale:
            self.full_scale[name] = full_scale_of(self.camera, frame.dtype)
        top = self.full_scale[name]
        lo, hi = float(frame.min()), float(frame.max())
        saturated = int(np.count_nonzero(frame >= top)) if top is not None and hi >= top else 0
        thumb = thumbnail(frame)
        if thumb.dtype.kind == "f":
            thumb = thumb.astype(np.float32)
        header = {
            "type": "frame",
            "name": name,
            "full_shape": list(frame.shape),
            "levels": [lo, hi],
            "mean": float(frame.mean()),
            "full_scale": top,
            "saturated": saturated,
        }
        self.send(header, thumb)

    def instrument_data(self, kind: str, payload: Any) -> None:
        """Listener of the drivers' :class:`~labpnn.data_hooks.DataHooks`: the live view of
        the camera, the spectrum or the microphone even in runs that record none (training).

        Silent for frames once the run records frames itself, and for spectra and waveforms
        once it records traces: those are what it keeps (often pooled, cropped or corrected),
        and the view must not flick between the two. It runs in the driver's measuring loop,
        so it only keeps the newest payload of each kind; a thread makes the thumbnail and its
        statistics (16 ms for a 2048×2048 frame) while the loop measures on.
        """
        if kind == "frame":
            wanted = not self.records_frames and self._due(("frame", "camera"))
        elif kind == "spectrum":
            wanted = not self.records_traces and self._due(("trace", "vna"))
        elif kind == "waveform":
            wanted = not self.records_traces and self._due(("trace", "mic"))
        else:
            wanted = False
        if not wanted or self.closed:
            return
        with self._pending_lock:
            self._pending[kind] = payload
            if self._worker is None:
                self._worker = threading.Thread(
                    target=self._publish_pending, name="labpnn-live", daemon=True
                )
                self._worker.start()
        self._wake.set()

    def _publish_pending(self) -> None:
        while not self.closed:
            self._wake.wait(0.5)
            self._wake.clear()
            with self._pending_lock:
                pending, self._pending = self._pending, {}
            for kind, payload in pending.items():
                with contextlib.suppress(Exception):  # a bad payload costs one picture
                    self._publish(kind, payload)

    def _publish(self, kind: str, payload: Any) -> None:
        if kind == "frame":
            self.send_frame("camera", payload)
        elif kind == "spectrum":
            # The trace dock shows one curve: the transmission, not the last of a two-port
            # calibration's S11, S21, S12, S22 (sent back to back, the view showed |S22|).
            f_hz, traces = payload
            param = "S21" if "S21" in traces else next(iter(traces), None)
            if param is not None:
                self.send_trace(param.lower(), traces[param], f_hz, "Hz")
        elif kind == "waveform":
            self.send_trace("mic", payload)

    def slm_presented(self, pattern: Any, *args: Any, **kwargs: Any) -> None:
        """Hook for the SLM driver's 'frame presented' event."""
        if pattern is None or not self._due(("slm", "slm")):
            return
        with contextlib.suppress(Exception):
            self.send({"type": "slm", "name": "slm"}, _slm_view(np.asarray(pattern)))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._wake.set()
            if self._worker is not None:
                self._worker.join(timeout=2.0)
            with self._lock, contextlib.suppress(Exception):
                self._sock.close(linger=200)


def _plain(value: Any) -> Any:
    arr = np.asarray(value)
    if arr.ndim == 0:
        item = arr.item()
        return item if isinstance(item, (int, float, bool, str)) else str(item)
    return arr.tolist() if arr.size <= 64 else f"<array {arr.shape}>"


def _hook_slm(station: Any, publisher: Publisher) -> bool:
    """Subscribe to the SLM driver's presented frames, if it exposes a hook."""
    slm = None
    with contextlib.suppress(Exception):
        slm = station["slm"] if "slm" in station else None
    if slm is None:
        return False
    for attr in ("present_listeners", "presented_listeners", "listeners", "on_present"):
        hooks = getattr(slm, attr, None)
        if isinstance(hooks, list):
            hooks.append(publisher.slm_presented)
            return True
    for method in ("add_present_hook", "add_present_listener", "add_listener"):
        adder = getattr(slm, method, None)
        if callable(adder):
            with contextlib.suppress(Exception):
                adder(publisher.slm_presented)
                return True
    return False


_current: Publisher | None = None


def attach_publisher(writer: Any, station: Any, address: str, run_id: str) -> Publisher | None:
    """Publish this run's frames, rows, traces and SLM patterns to the GUI at ``address``.

    Called by the runner when ``LABPNN_LIVE`` is set. A failure here only costs the
    live view: the run itself goes on.
    """
    global _current
    try:
        publisher = Publisher(address, run_id)
    except Exception as exc:
        log.warning("no live view: cannot reach the GUI at %s (%s)", address, exc)
        return None
    with contextlib.suppress(Exception):
        publisher.camera = station["camera"] if "camera" in station else None
    writer.listeners.append(publisher)
    slm_hooked = _hook_slm(station, publisher)
    for role in list(getattr(station, "instruments", {}) or {}):
        with contextlib.suppress(Exception):
            hooks = getattr(station[role], "data_hooks", None)
            if hooks is not None:
                hooks.add(publisher.instrument_data)
    attrs: dict[str, Any] = {}
    with contextlib.suppress(Exception):
        attrs = {k: writer.f.attrs[k] for k in ("procedure", "station") if k in writer.f.attrs}
    publisher.send(
        {
            "type": "hello",
            "name": "run",
            "path": str(Path(writer.path).resolve()),
            "pid": os.getpid(),
            "procedure": str(attrs.get("procedure", "")),
            "station": str(attrs.get("station", getattr(station, "name", ""))),
            "roles": list(getattr(station, "instruments", {}) or {}),
            "slm_hooked": slm_hooked,
        }
    )
    _current = publisher
    return publisher


# -- operator prompts (run side) ------------------------------------------------------
def ask_operator(
    request: dict[str, Any],
    timeout_s: float,
    address: str | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> dict[str, Any]:
    """Show ``request`` to the operator in the GUI and wait for the answer.

    ``request`` needs a ``prompt`` or ``text``. Returns the GUI's answer, at least
    ``{"ok": True}``, plus ``"value"`` for choices and values. Raises
    :class:`OperatorUnavailable` when no GUI started this run, when nobody answered
    within ``timeout_s``, or when the operator declined; raises
    :class:`~labpnn.errors.RunAborted` when the run was aborted while waiting (the GUI
    answers pending requests with ``{"ok": false, "aborted": true}``, and
    ``should_stop()`` is polled every 0.1 s).
    """
    import zmq

    from labpnn.errors import RunAborted

    prompt = str(request.get("prompt") or request.get("text") or "")
    if not prompt:
        raise ValueError("an operator request needs a 'prompt' (or 'text')")
    address = address or os.environ.get(LIVE_ENV)
    if not address:
        raise OperatorUnavailable(
            f"this step needs a person: {prompt} No GUI started this run; start it from "
            "`labpnn gui` to answer prompts"
        )
    request_id = uuid.uuid4().hex[:12]
    message = {
        "v": PROTOCOL,
        "type": "operator",
        "id": request_id,
        "run_id": _current.run_id if _current is not None else "",
        "request": {**request, "prompt": prompt},
    }
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(address)
        sock.send(json.dumps(message, default=_json_default).encode())
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if should_stop is not None and should_stop():
                raise RunAborted(f"aborted while waiting for the operator: {prompt}")
            if not sock.poll(100, zmq.POLLIN):
                continue
            reply = json.loads(sock.recv())
            if reply.get("id") != request_id:
                continue
            answer = dict(reply.get("answer") or {"ok": False})
            if answer.get("aborted"):
                raise RunAborted(f"aborted while waiting for the operator: {prompt}")
            if not answer.get("ok"):
                raise OperatorUnavailable(f"the operator declined: {prompt}")
            return answer
        raise OperatorUnavailable(
            f"nobody answered the operator request '{prompt}' within {timeout_s:g} s"
        )
    finally:
        sock.close(linger=0)


# -- pause / resume -------------------------------------------------------------------
def pause_flag(run_id: str) -> Path:
    """The file whose presence asks run ``run_id`` to pause at its next step."""
    from labpnn import paths

    return paths.state_dir() / "runs" / f"{run_id}.pause"


def request_pause(run_id: str) -> None:
    flag = pause_flag(run_id)
    flag.parent.mkdir(parents=True, exist_ok=True)
    flag.write_text(str(time.time()))


def request_resume(run_id: str) -> None:
    with contextlib.suppress(OSError):
        pause_flag(run_id).unlink()


def pause_requested(run_id: str) -> bool:
    return pause_flag(run_id).exists()


# -- the GUI side (no Qt here; gui.live_feed drives it from a timer) ------------------
@dataclass
class Message:
    type: str
    header: dict[str, Any]
    array: np.ndarray | None = None
    peer: list[bytes] = field(default_factory=list)  # ROUTER envelope, for replies


class LiveServer:
    """Binds the loopback ROUTER and drains it without blocking."""

    def __init__(self, host: str = "127.0.0.1"):
        import zmq

        self._zmq = zmq
        self._ctx = zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.RCVHWM, 256)
        port = self._sock.bind_to_random_port(f"tcp://{host}")
        self.address = f"tcp://{host}:{port}"

    def drain(self, max_messages: int = 2000) -> list[Message]:
        """Everything waiting, oldest first; only the newest frame per stream is kept."""
        out: list[Message] = []
        latest: dict[tuple[str, str, str], int] = {}
        for _ in range(max_messages):
            try:
                parts = self._sock.recv_multipart(flags=self._zmq.NOBLOCK)
            except self._zmq.Again:
                break
            msg = self._parse(parts)
            if msg is None:
                continue
            if msg.type in ("frame", "slm", "trace"):
                key = (msg.type, str(msg.header.get("run_id")), str(msg.header.get("name")))
                if key in latest:
                    out[latest[key]] = None  # type: ignore[call-overload]
                latest[key] = len(out)
            out.append(msg)
        return [m for m in out if m is not None]

    def _parse(self, parts: list[bytes]) -> Message | None:
        try:
            if len(parts) >= 3 and parts[1] == b"":  # REQ: [id, "", body]
                header = json.loads(parts[2])
                return Message(header.get("type", ""), header, None, parts[:2])
            header, array = decode(parts[1:])
            return Message(header.get("type", ""), header, array, parts[:1])
        except (ValueError, KeyError, TypeError) as exc:
            log.debug("ignored a malformed live message: %s", exc)
            return None

    def reply(self, request: Message, answer: dict[str, Any]) -> None:
        body = {
            "v": PROTOCOL,
            "type": "operator-reply",
            "id": request.header.get("id"),
            "answer": answer,
        }
        with contextlib.suppress(Exception):
            self._sock.send_multipart(
                [*request.peer, json.dumps(body).encode()], flags=self._zmq.NOBLOCK
            )

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._sock.close(linger=0)


def hold_while_paused(
    run_id: str,
    should_stop: Callable[[], bool],
    keep_alive: Callable[[], None] | None = None,
    poll_s: float = 0.2,
) -> float:
    """Block while run ``run_id`` is asked to pause; returns the seconds spent paused.

    Called between steps by procedures that support pausing (the runner wires it into
    ``LabProcedure.progress``). ``keep_alive`` is called while paused so the watchdog
    does not mistake a pause for a hang; a stop request ends the pause at once.
    """
    if not pause_requested(run_id):
        return 0.0
    start = time.monotonic()
    log.warning("paused by the operator; waiting for resume")
    while pause_requested(run_id) and not should_stop():
        if keep_alive is not None:
            keep_alive()
        time.sleep(poll_s)
    paused = time.monotonic() - start
    log.warning("resumed after %.1f s paused", paused)
    return paused
