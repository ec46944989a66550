"""A mock vector network analyser: an asyncio SCPI server on loopback, measuring a simulated device.

It speaks the subset of the Keysight ENA, Keysight PNA, Rohde & Schwarz ZNB and Copper
Mountain dialects that ``labpnn.drivers.vna`` uses, all at once (a client picks its family by
the commands it sends), so the *unmodified* drivers (and any plain pyvisa script) reach it
through pyvisa-py at ``TCPIP::127.0.0.1::<port>::SOCKET``:

* sweep setup (``SENS:FREQ:STAR/STOP``, ``SENS:SWE:POIN``, ``SENS:BWID`` or ``SENS:BAND``,
  ``SOUR:POW``, ``OUTP``), triggering (``TRIG:SOUR``, ``TRIG[:SEQ]:SING``, ``INIT[:IMM]``,
  ``INIT:CONT``, ``SENS:SWE:MODE HOLD|CONT|SING``) and ``*OPC?``, which answers only once
  the sweep time has passed. ``SENS:SWE:MODE SING`` sweeps only with an internal trigger
  source (``INT``/``IMM``); otherwise it pushes ``-221,"Settings conflict"`` (a PNA would
  wait for a trigger that never comes);
* traces in all four styles (``CALC:PAR:COUN``/``CALC:PAR<n>:DEF``/``CALC:PAR<n>:SEL`` +
  ``CALC:DATA:SDAT?``; ``CALC:PAR:SDEF 'Trc1','S21'`` + ``CALC:DATA:TRAC? 'Trc1',SDAT``;
  ``CALC:TRAC<n>:DATA:SDAT?``; the PNA's named measurements ``CALC:PAR[:DEF]:EXT
  'CH1_S21','S21'`` or ``CALC:PAR:DEF 'CH1_S21',S21`` + ``CALC:PAR:SEL 'CH1_S21'`` +
  ``CALC:DATA? SDATA``), all deleted by ``CALC:PAR:DEL:ALL``;
* ``FORM[:DATA] ASC|REAL,64|REAL|REAL,32`` and ``FORM:BORD NORM|SWAP`` (NORM, big-endian,
  is the power-on default, as on Keysight: a driver that forgets SWAP reads garbage);
* ``*IDN?``, ``*RST``, ``*CLS``, ``SYST:ERR?`` with a real error queue: an unknown command
  pushes ``-113,"Undefined header"``, a bad value ``-222,"Data out of range"``.

What is measured comes from a ``measure(state)`` callback (the simulated world: cavity,
hidden error boxes, noise). Faults for tests: ``hang`` (reads, executes, never answers),
``drop`` (closes the connection at the next query), ``garbage`` and ``truncate`` (the next
data reply is corrupt or stops half way).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labpnn.mock_instruments.scpi import (
    CommandTable,
    ieee_block,
    parse_bool,
    split_args,
    split_message,
)

IDN = "labpnn,MockVNA,SIM-{seed:04d},0.1.0"
S_PARAMS = ("S11", "S21", "S12", "S22")
FAULTS = ("hang", "drop", "garbage", "truncate")

# What the mock accepts; real families have narrower model-specific envelopes.
LIMITS = {
    "start_hz": (1e3, 1e11),
    "stop_hz": (1e3, 1e11),
    "points": (2, 100_001),
    "ifbw_hz": (1.0, 1e7),
    "power_dbm": (-100.0, 20.0),
}


class SCPIError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(f'{code},"{message}"')
        self.code, self.message = code, message


@dataclass
class VNAState:
    """What the instrument remembers; also what the world needs to simulate a sweep."""

    start_hz: float = 1e9
    stop_hz: float = 3e9
    points: int = 201
    ifbw_hz: float = 10e3
    power_dbm: float = 0.0
    rf_on: bool = True
    continuous: bool = True
    trigger_source: str = "INT"
    data_format: str = "ASC"  # ASC | REAL64 | REAL32
    big_endian: bool = True
    traces: dict[int, str] = field(default_factory=lambda: {1: "S11"})
    trace_names: dict[str, int] = field(default_factory=lambda: {"Trc1": 1})
    selected: int = 1

    def frequencies(self) -> np.ndarray:
        return np.linspace(self.start_hz, self.stop_hz, self.points)

    def reverse_needed(self) -> bool:
        return any(p in ("S12", "S22") for p in self.traces.values())

    def sweep_time_s(self) -> float:
        """Points over IF bandwidth plus settling per point, doubled for reverse sweeps."""
        one_way = self.points * (1.0 / self.ifbw_hz + 5e-6) + 1e-3
        return one_way * (2 if self.reverse_needed() else 1)

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["traces"] = {str(k): v for k, v in self.traces.items()}
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VNAState:
        data = dict(data)
        data["traces"] = {int(k): v for k, v in data.get("traces", {}).items()}
        return cls(**data)


Measure = Callable[[VNAState], tuple[np.ndarray, float]]


class MockVNA:
    """The instrument's logic (state, commands, error queue), independent of the socket."""

    def __init__(self, measure: Measure, idn: str = IDN.format(seed=0), realtime: bool = False):
        self.measure = measure
        self.idn = idn
        self.realtime = realtime
        self.state = VNAState()
        self.errors: collections.deque[str] = collections.deque()
        self.log: collections.deque[str] = collections.deque(maxlen=2000)
        self.data: np.ndarray | None = None  # raw S [F, 2, 2] of the last sweep
        self.data_f: np.ndarray | None = None
        self.ready_at = 0.0  # loop time at which the running sweep completes (real-time mode)
        self.sweeps = 0
        self.faults: dict[str, bool] = dict.fromkeys(FAULTS, False)
        self.scheduled: dict[str, int] = {}  # fault -> number of completed sweeps that arms it
        self.lock = threading.RLock()
        self.table = CommandTable()
        self._build_table()

    # -- faults ---------------------------------------------------------------------------
    def inject(self, fault: str, after_sweeps: int | None = None) -> None:
        """Switch a fault on now, or once ``after_sweeps`` sweeps have completed."""
        if fault not in FAULTS:
            raise ValueError(f"unknown VNA fault '{fault}' (known: {', '.join(FAULTS)})")
        with self.lock:
            if after_sweeps is None:
                self.faults[fault] = True
            else:
                self.scheduled[fault] = self.sweeps + int(after_sweeps)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults = dict.fromkeys(FAULTS, False)
            self.scheduled.clear()

    # -- errors ---------------------------------------------------------------------------
    def push_error(self, code: int, message: str) -> None:
        if len(self.errors) >= 16:
            self.errors[-1] = '-350,"Queue overflow"'
            return
        self.errors.append(f'{code:+d},"{message}"')

    # -- command table -------------------------------------------------------------------
    def _build_table(self) -> None:
        t = self.table
        t.add("*IDN?", lambda s, a, q: self.idn)
        t.add("*OPC?", lambda s, a, q: "1")
        t.add("*RST", self._reset)
        t.add("*CLS", lambda s, a, q: self.errors.clear())
        t.add("*WAI", lambda s, a, q: None)
        t.add("SYSTem:ERRor[:NEXT]?", self._next_error)
        t.add("SYSTem:PRESet", self._reset)
        t.add("SENSe#:FREQuency:STARt[?]", self._number("start_hz"))
        t.add("SENSe#:FREQuency:STOP[?]", self._number("stop_hz"))
        t.add("SENSe#:SWEep:POINts[?]", self._number("points", int))
        t.add("SENSe#:BWIDth[:RESolution][?]", self._number("ifbw_hz"))
        t.add("SENSe#:BANDwidth[:RESolution][?]", self._number("ifbw_hz"))
        t.add("SENSe#:SWEep:TIME?", lambda s, a, q: f"{self.state.sweep_time_s():.6e}")
        t.add("SENSe#:FREQuency:DATA?", lambda s, a, q: self._values(self.state.frequencies()))
        t.add("SOURce#:POWer[:LEVel][:IMMediate][:AMPLitude][?]", self._number("power_dbm"))
        t.add("OUTPut[:STATe][?]", self._rf)
        t.add("FORMat[:DATA][?]", self._format)
        t.add("FORMat:BORDer[?]", self._border)
        t.add("TRIGger[:SEQuence]:SOURce[?]", self._trigger_source)
        t.add("TRIGger[:SEQuence]:SINGle", self._trigger)
        t.add("INITiate#[:IMMediate]", self._trigger)
        t.add("INITiate#:CONTinuous[?]", self._continuous)
        t.add("SENSe#:SWEep:MODE[?]", self._sweep_mode)
        t.add("CALCulate#:PARameter:COUNt[?]", self._par_count)
        t.add("CALCulate#:PARameter#:DEFine[?]", self._par_define)
        t.add("CALCulate#:PARameter#:SELect", self._par_select)
        t.add("CALCulate#:PARameter:SDEFine", self._par_sdefine)
        t.add("CALCulate#:PARameter[:DEFine]:EXTended", self._par_sdefine)
        t.add("CALCulate#:PARameter:DELete:ALL", self._par_delete_all)
        t.add("CALCulate#:DATA:SDATa?", lambda s, a, q: self._trace(self.state.selected))
        t.add("CALCulate#:SELected:DATA:SDATa?", lambda s, a, q: self._trace(self.state.selected))
        t.add("CALCulate#:TRACe#:DATA:SDATa?", lambda s, a, q: self._trace(s[1]))
        t.add("CALCulate#:DATA:TRACe?", self._trace_by_name)
        t.add("CALCulate#:DATA?", self._selected_data)

    def _reset(self, suffixes, args, query):
        self.state = VNAState()
        self.data = self.data_f = None

    def _next_error(self, suffixes, args, query):
        return self.errors.popleft() if self.errors else '+0,"No error"'

    def _number(self, name: str, kind: type = float):
        def handler(suffixes, args, query):
            if query:
                value = getattr(self.state, name)
                return str(value) if kind is int else f"{value:.12g}"
            try:
                value = kind(float(args))
            except ValueError:
                raise SCPIError(-104, "Data type error") from None
            lo, hi = LIMITS[name]
            if not lo <= value <= hi:
                raise SCPIError(-222, "Data out of range")
            setattr(self.state, name, value)

        return handler

    def _rf(self, suffixes, args, query):
        if query:
            return "1" if self.state.rf_on else "0"
        self.state.rf_on = self._bool(args)

    def _continuous(self, suffixes, args, query):
        if query:
            return "1" if self.state.continuous else "0"
        self.state.continuous = self._bool(args)

    @staticmethod
    def _bool(args: str) -> bool:
        try:
            return parse_bool(args)
        except ValueError:
            raise SCPIError(-224, "Illegal parameter value") from None

    def _format(self, suffixes, args, query):
        if query:
            return {"ASC": "ASC,0", "REAL64": "REAL,64", "REAL32": "REAL,32"}[
                self.state.data_format
            ]
        formats = {
            "ASC": "ASC", "ASCII": "ASC", "ASC,0": "ASC", "ASCII,0": "ASC",
            "REAL": "REAL64", "REAL,64": "REAL64", "REAL64": "REAL64",
            "REAL,32": "REAL32", "REAL32": "REAL32",
        }  # fmt: skip
        self.state.data_format = self._keyword(args, formats)

    @staticmethod
    def _keyword(args: str, choices: dict[str, Any]) -> Any:
        """The value ``choices`` gives a keyword argument (any case, spaces ignored)."""
        try:
            return choices[args.replace(" ", "").upper()]
        except KeyError:
            raise SCPIError(-224, "Illegal parameter value") from None

    def _border(self, suffixes, args, query):
        if query:
            return "NORM" if self.state.big_endian else "SWAP"
        orders = {"NORM": True, "NORMAL": True, "SWAP": False, "SWAPPED": False}
        self.state.big_endian = self._keyword(args, orders)

    def _trigger_source(self, suffixes, args, query):
        if query:
            return self.state.trigger_source
        value = args.strip().upper()[:3]
        if value not in ("INT", "BUS", "EXT", "MAN", "IMM"):
            raise SCPIError(-224, "Illegal parameter value")
        self.state.trigger_source = value

    def _trigger(self, suffixes, args, query):
        """Take one sweep now; ``*OPC?`` and data queries wait until it is complete."""
        data, duration_s = self.measure(self.state)
        self.data, self.data_f = data, self.state.frequencies()
        self.sweeps += 1
        for fault, at in list(self.scheduled.items()):
            if self.sweeps >= at:
                self.faults[fault] = True
                del self.scheduled[fault]
        if self.realtime:
            self.ready_at = asyncio.get_running_loop().time() + duration_s

    def _sweep_mode(self, suffixes, args, query):
        """The PNA's per-channel trigger mode; ``SING`` takes one sweep, then holds."""
        if query:
            return "CONT" if self.state.continuous else "HOLD"
        modes = {"HOLD": "HOLD", "CONT": "CONT", "CONTINUOUS": "CONT", "SING": "SING",
                 "SINGLE": "SING"}  # fmt: skip
        mode = self._keyword(args, modes)
        if mode == "SING" and self.state.trigger_source not in ("INT", "IMM"):
            raise SCPIError(-221, "Settings conflict")
        self.state.continuous = mode == "CONT"
        if mode == "SING":
            self._trigger(suffixes, args, query)

    def _par_count(self, suffixes, args, query):
        if query:
            return str(len(self.state.traces))
        try:
            n = int(args)
        except ValueError:
            raise SCPIError(-104, "Data type error") from None
        if not 1 <= n <= 16:
            raise SCPIError(-222, "Data out of range")
        defaults = {i + 1: S_PARAMS[i % 4] for i in range(n)}
        self.state.traces = {i: self.state.traces.get(i, defaults[i]) for i in range(1, n + 1)}

    def _par_define(self, suffixes, args, query):
        if not query and len(split_args(args)) == 2:  # the PNA's older CALC:PAR:DEF 'name',S21
            return self._par_sdefine(suffixes, args, query)
        index = suffixes[1]
        if index not in self.state.traces:
            raise SCPIError(-200, "Execution error; trace not defined")
        if query:
            return self.state.traces[index]
        param = args.strip().strip("'\"").upper()
        if param not in S_PARAMS:
            raise SCPIError(-224, "Illegal parameter value")
        self.state.traces[index] = param

    def _par_select(self, suffixes, args, query):
        # ENA: CALC:PAR<n>:SEL; PNA: CALC:PAR:SEL '<name>'[,fast]
        index = self.state.trace_names.get(split_args(args)[0]) if args else suffixes[1]
        if index not in self.state.traces:
            raise SCPIError(-200, "Execution error; trace not defined")
        self.state.selected = index

    def _par_sdefine(self, suffixes, args, query):
        parts = split_args(args)
        if len(parts) != 2 or parts[1].upper() not in S_PARAMS:
            raise SCPIError(-224, "Illegal parameter value")
        name, param = parts[0], parts[1].upper()
        index = self.state.trace_names.get(name) or max(self.state.traces, default=0) + 1
        self.state.traces[index] = param
        self.state.trace_names[name] = index

    def _par_delete_all(self, suffixes, args, query):
        self.state.traces = {}
        self.state.trace_names = {}

    def _trace_by_name(self, suffixes, args, query):
        parts = split_args(args)
        if not parts or parts[0] not in self.state.trace_names:
            raise SCPIError(-200, "Execution error; trace not defined")
        return self._trace(self.state.trace_names[parts[0]])

    def _selected_data(self, suffixes, args, query):
        """The PNA's ``CALC:DATA? SDATA``: complex data of the selected measurement."""
        if args.strip().upper() not in ("SDATA", "SDAT"):
            raise SCPIError(-224, "Illegal parameter value")
        return self._trace(self.state.selected)

    def _trace(self, index: int):
        if index not in self.state.traces:
            raise SCPIError(-200, "Execution error; trace not defined")
        p = self.state.traces[index]
        i, j = int(p[1]) - 1, int(p[2]) - 1
        n = self.state.points
        data = self.data[:, i, j] if self.data is not None else np.zeros(n, complex)
        flat = np.empty(2 * len(data))
        flat[0::2], flat[1::2] = data.real, data.imag
        return self._values(flat)

    def _values(self, values: np.ndarray) -> DataReply:
        fmt = self.state.data_format
        if fmt == "ASC":
            return DataReply(",".join(f"{v:.12e}" for v in values).encode(), ascii=True)
        dtype = (">" if self.state.big_endian else "<") + ("f8" if fmt == "REAL64" else "f4")
        return DataReply(ieee_block(np.asarray(values, dtype=dtype).tobytes()), ascii=False)

    # -- one message -----------------------------------------------------------------------
    def handle(self, line: str) -> list[str | DataReply]:
        """Execute one message; return the replies, in order, for its queries."""
        replies: list[str | DataReply] = []
        with self.lock:
            self.log.append(line)
            for header, args in split_message(line):
                found = self.table.lookup(header)
                if found is None:
                    self.push_error(-113, "Undefined header")
                    continue
                handler, suffixes, query = found
                try:
                    reply = handler(suffixes, args, query)
                except SCPIError as exc:
                    self.push_error(exc.code, exc.message)
                    continue
                if query:
                    replies.append(reply if reply is not None else "")
        return replies


@dataclass
class DataReply:
    payload: bytes
    ascii: bool


class VNAServer:
    """Serves a :class:`MockVNA` over TCP on a background asyncio thread."""

    def __init__(self, vna: MockVNA, host: str = "127.0.0.1", port: int = 0):
        self.vna = vna
        self.host, self.port = host, int(port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> str:
        return f"TCPIP::{self.host}::{self.port}::SOCKET"

    def start(self) -> VNAServer:
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._serve_client, self.host, self.port, limit=2**20)
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                failure.append(exc)
                started.set()
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="mock-vna", daemon=True)
        self._thread.start()
        started.wait(10)
        if failure:
            raise OSError(f"mock VNA cannot listen on {self.host}:{self.port}: {failure[0]}")
        return self

    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self._writers.add(writer)
        vna = self.vna
        sock = writer.get_extra_info("socket")
        _tcp_option(sock, "TCP_NODELAY")
        try:
            while True:
                raw = await reader.readline()
                if not raw:
                    break
                # Acknowledge at once: a client without TCP_NODELAY otherwise waits for our
                # delayed ACK (40 ms) before sending a query that follows a plain write.
                _tcp_option(sock, "TCP_QUICKACK")
                line = raw.decode("latin-1").strip()
                if not line:
                    continue
                replies = vna.handle(line)
                if not replies:
                    continue
                if vna.faults["drop"]:
                    vna.faults["drop"] = False
                    break
                if vna.faults["hang"]:
                    continue
                if vna.realtime:
                    delay = vna.ready_at - asyncio.get_running_loop().time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                for reply in replies:
                    writer.write(self._encode(reply))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    def _encode(self, reply: str | DataReply) -> bytes:
        vna = self.vna
        if isinstance(reply, DataReply):
            if vna.faults["garbage"]:
                vna.faults["garbage"] = False
                return b"#Z\x8f\x00garbled,1.2.3\xff" + b"\n"
            if vna.faults["truncate"] and not reply.ascii:
                vna.faults["truncate"] = False
                cut = max(len(reply.payload) // 2, 3)
                return reply.payload[:cut] + b"\n"
            return reply.payload + b"\n"
        return reply.encode() + b"\n"

    def close(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.close()
            loop.stop()

        with contextlib.suppress(RuntimeError):
            asyncio.run_coroutine_threadsafe(shutdown(), loop)
        thread.join(5)
        self._loop = self._thread = None


def _tcp_option(sock: Any, name: str) -> None:
    import socket

    option = getattr(socket, name, None)
    if sock is not None and option is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, option, 1)


def serve_vna(
    port: int = 0,
    seed: int = 1,
    host: str = "127.0.0.1",
    noise: float | None = None,
    metasurface: bool = False,
    clock: str = "real-time",
    stop: threading.Event | None = None,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Run a standalone mock VNA (``labpnn mock-server vna [--port P]``) until Ctrl+C.

    It measures the simulated metasurface cavity (in its all-zero configuration unless
    ``metasurface=True`` also opens the controller's pseudo-terminal) through hidden error
    boxes, in real time. Prints the VISA address to use, for instance from a plain script::

        import pyvisa
        vna = pyvisa.ResourceManager("@py").open_resource(
            "TCPIP::127.0.0.1::5025::SOCKET", read_termination="\\n", write_termination="\\n")
        vna.write("FORM:BORD SWAP;:FORM REAL,64;:TRIG:SOUR BUS;:CALC1:PAR1:DEF S21")
        vna.write("TRIG:SING"); vna.query("*OPC?")
        vna.query_binary_values("CALC1:DATA:SDAT?", datatype="d", container=np.array)

    ``stop`` (an Event) ends it from another thread; tests use it.
    """
    from labpnn.mock_instruments.microwave_world import MicrowaveWorld

    simulation: dict[str, Any] = {"seed": seed, "clock": clock, "host": host, "vna_port": port}
    if noise is not None:
        simulation["noise"] = noise
    world = MicrowaveWorld({}, simulation, {}, serve_metasurface=metasurface)
    stop = stop or threading.Event()
    announce = announce or (lambda line: print(line, flush=True))
    if threading.current_thread() is threading.main_thread():
        # Explicit handlers: a process started in the background by a shell inherits
        # SIGINT as *ignored*, and Python then never raises KeyboardInterrupt.
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    try:
        announce(f"mock VNA listening: {world.vna_address}")
        if metasurface:
            announce(f"mock metasurface controller: {world.metasurface_port}")
        announce("press Ctrl+C to stop")
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        world.close()
