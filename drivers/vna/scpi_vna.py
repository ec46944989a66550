"""The one implementation behind every VNA family: configure, traces, single sweeps, errors.

A family subclass supplies a :class:`~labpnn.drivers.vna.dialects.Dialect` (its SCPI
strings) and its capability ranges; everything else is shared. The rules it follows:

* every setter checks the value against the family's range and the station's lab limit
  *before* anything is sent (``power_dbm`` above the limit never reaches the instrument);
* both terminators are set explicitly (``\\n``), and so is the byte order (``FORM:BORD SWAP``):
  complex data come as little-endian ``REAL,64`` IEEE blocks, read with pyvisa's
  ``query_binary_values``;
* a sweep is one trigger synchronised with ``*OPC?``, under a VISA timeout derived from the
  sweep time, so a slow sweep is not mistaken for a dead instrument and a dead instrument is
  noticed;
* the error queue (``SYST:ERR?`` until ``0,"No error"``) is read after each configuration
  and each data read; an entry becomes :class:`InstrumentError` quoting the instrument.
  A timeout is :class:`InstrumentTimeout`, a closed connection :class:`DeviceLost`, a bad
  reply an :class:`InstrumentError` naming the command.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pymeasure.instruments import Instrument, SCPIMixin

from labpnn.data_hooks import DataHooks
from labpnn.drivers.vna.correction import S_PARAMETERS, CalibrationCorrection
from labpnn.drivers.vna.dialects import Dialect
from labpnn.drivers.vna.replies import (
    parse_bool_reply,
    parse_error_entry,
    parse_idn,
    parse_number,
)
from labpnn.drivers.vna.visa_io import VisaExchange
from labpnn.errors import (
    BadInput,
    ConfigError,
    DeviceLost,
    InstrumentError,
    InstrumentTimeout,
    LimitError,
)
from labpnn.settings import InstrumentSettings, Setting, refuse_unknown_options

SWEEP_SETTINGS = ("start_hz", "stop_hz", "points", "ifbw_hz", "power_dbm")
PER_POINT_OVERHEAD_S = 20e-6  # settling and retrace per point, generous for any family


def vna_settings(
    f_range_hz: tuple[float, float],
    max_points: int,
    ifbw_range_hz: tuple[float, float],
    power_range_dbm: tuple[float, float],
) -> tuple[Setting, ...]:
    """The settings every VNA declares, with the family's capability envelope."""
    return (
        Setting("start_hz", "Hz", "Start frequency of the sweep.", f_range_hz),
        Setting("stop_hz", "Hz", "Stop frequency of the sweep.", f_range_hz),
        Setting("points", "", "Number of sweep points.", (2, max_points), kind=int),
        Setting("ifbw_hz", "Hz", "IF bandwidth: noise ∝ √ifbw, time ∝ 1/ifbw.", ifbw_range_hz),
        Setting("power_dbm", "dBm", "Source power at the test ports.", power_range_dbm),
        Setting("rf_on", "", "RF output on.", kind=bool),
    )


class ScpiVNA(VisaExchange, CalibrationCorrection, SCPIMixin, Instrument, InstrumentSettings):
    """A 2-port SCPI VNA (one channel). Use a family class: KeysightENA, KeysightPNA,
    RohdeSchwarzZNB, CopperMountainVNA.

    Options (station YAML): ``address`` (VISA resource, e.g.
    ``TCPIP::192.168.1.5::5025::SOCKET``), ``timeout_s`` (ordinary replies, 5 s),
    ``channel`` (1), ``transfer_format`` (``binary`` | ``ascii``), ``sweep_timeout_margin``
    (2: the ``*OPC?`` timeout is ``timeout_s + margin × expected sweep time``),
    ``visa_library`` (``@py``, i.e. pyvisa-py).
    """

    DIALECT: Dialect
    SETTINGS = vna_settings((9e3, 67e9), 100_001, (1.0, 15e6), (-100.0, 20.0))
    # CommonBase hooks every attribute read to hide the parameters of pymeasure "dynamic"
    # properties; this driver declares none, so plain lookup is equivalent and much cheaper
    # (it was a third of the driver's own CPU time per sweep).
    __getattribute__ = object.__getattribute__

    def __init__(
        self,
        adapter: Any = None,
        label: str = "vna",
        limits: Mapping[str, Sequence[float]] | None = None,
        address: str | None = None,
        timeout_s: float = 5.0,
        channel: int = 1,
        transfer_format: str = "binary",
        sweep_timeout_margin: float = 2.0,
        visa_library: str = "@py",
        **options: Any,
    ):
        refuse_unknown_options(label, type(self), options)
        if transfer_format not in ("binary", "ascii"):
            raise ConfigError(f"{label}: transfer_format must be 'binary' or 'ascii'")
        self._init_settings(label, limits)
        self.timeout_s = float(timeout_s)
        self.channel = int(channel)
        self.transfer_format = transfer_format
        self.sweep_timeout_margin = float(sweep_timeout_margin)
        self.address = address
        self._last_command = ""
        self._stale = False  # a reply may still be in flight after a timeout or bad block
        self._session_ready = False
        self._cache: dict[str, Any] = {}
        self._traces: tuple[str, ...] = ()
        self._selected = 0  # trace last selected (Keysight: CALC:PAR<i>:SEL, PNA: by name)
        self._calibration: Any = None
        self._calibration_port = 1
        self.data_hooks = DataHooks()  # each sweep, for live views
        if adapter is None:
            if not address:
                raise ConfigError(
                    f"{label}: no address; set e.g. address: 'TCPIP::192.168.1.5::5025::SOCKET' "
                    "in the station file"
                )
            adapter = address
        try:
            super().__init__(
                adapter,
                f"{type(self).__name__} ({label})",
                read_termination="\n",
                write_termination="\n",
                timeout=int(self.timeout_s * 1000),
                visa_library=visa_library,
            )
        except Exception as exc:  # pyvisa raises many kinds here; all mean "not reachable"
            raise DeviceLost(
                f"{label}: cannot connect to {address}: {exc}. Is the VNA on, on the network, "
                "and is the address right?"
            ) from None
        self._attach_resource()

    # -- error queue ------------------------------------------------------------------------
    def raise_errors(self, context: str) -> None:
        """Read the error queue to the end; raise if the instrument reported anything."""
        entries = []
        for _ in range(32):
            reply = self._query(self.DIALECT.error_query)
            with self._parsing():
                code, message = parse_error_entry(reply, self.DIALECT.error_query)
            if code == 0:
                break
            entries.append(f'{code},"{message}"')
        if entries:
            raise InstrumentError(
                f"{self.label}: the VNA reported {'; '.join(entries)} after {context}"
            )

    # -- settings -----------------------------------------------------------------------------
    def _cmd(self, template: str, **fields: Any) -> str:
        return template.format(ch=self.channel, **fields)

    @staticmethod
    def _number(value: float | int) -> str:
        return str(int(value)) if isinstance(value, int) else f"{value:.12g}"

    def _get(self, name: str) -> Any:
        command = self._cmd(getattr(self.DIALECT, name)) + "?"
        reply = self._query(command)
        spec = self.setting_spec(name)
        value: Any
        with self._parsing():
            if spec.kind is bool:
                value = parse_bool_reply(reply, command)
            else:
                value = spec.kind(parse_number(reply, command))
                if spec.range is not None and not spec.range[0] <= value <= spec.range[1]:
                    # e.g. an IFBW of 0 would divide the sweep-time estimate by zero
                    raise InstrumentError(
                        f"reply to '{command}' says {name}={value:g}{' ' + spec.unit if spec.unit else ''}, "
                        f"which a {type(self).__name__} cannot be set to "
                        f"({spec.range[0]:g}..{spec.range[1]:g}): a garbled reply?"
                    )
        self._cache[name] = value
        return value

    def _set(self, name: str, value: Any) -> None:
        value = self.check(name, value)
        self._send_setting(name, value)
        self.raise_errors(f"setting {name}={value}")

    def _send_setting(self, name: str, value: Any) -> None:
        head = self._cmd(getattr(self.DIALECT, name))
        arg = ("ON" if value else "OFF") if isinstance(value, bool) else self._number(value)
        self.write(f"{head} {arg}")
        self._cache[name] = value

    start_hz = property(
        lambda self: self._get("start_hz"), lambda self, v: self._set("start_hz", v)
    )
    stop_hz = property(lambda self: self._get("stop_hz"), lambda self, v: self._set("stop_hz", v))
    points = property(lambda self: self._get("points"), lambda self, v: self._set("points", v))
    ifbw_hz = property(lambda self: self._get("ifbw_hz"), lambda self, v: self._set("ifbw_hz", v))
    power_dbm = property(
        lambda self: self._get("power_dbm"), lambda self, v: self._set("power_dbm", v)
    )
    rf_on = property(
        lambda self: self._get("rf_on"),
        lambda self, v: self._set("rf_on", v),
        doc="RF output state; ``safe_state()`` switches it off.",
    )

    def configure(
        self,
        start_hz: float,
        stop_hz: float,
        points: int,
        ifbw_hz: float,
        power_dbm: float | None = None,
    ) -> None:
        """Set up one linear sweep; all values are checked before anything is sent.

        Then reads the error queue and reads the values back (the instrument may round
        points or IF bandwidth), which fixes the frequency axis of later sweeps.
        """
        values = {"start_hz": start_hz, "stop_hz": stop_hz, "points": points, "ifbw_hz": ifbw_hz}
        if power_dbm is not None:
            values["power_dbm"] = power_dbm
        checked = {name: self.check(name, value) for name, value in values.items()}
        if checked["start_hz"] >= checked["stop_hz"]:
            raise LimitError(
                f"{self.label}: start_hz={checked['start_hz']:g} must be below "
                f"stop_hz={checked['stop_hz']:g}"
            )
        self._send_session_setup()
        for name, value in checked.items():
            self._send_setting(name, value)
        self.raise_errors("configure(" + ", ".join(f"{k}={v:g}" for k, v in checked.items()) + ")")
        for name in SWEEP_SETTINGS:
            self._get(name)
        self._session_ready = True

    def _send_session_setup(self) -> None:
        d = self.DIALECT
        self.write(d.byte_order)
        self.write(d.binary_format if self.transfer_format == "binary" else d.ascii_format)
        for command in d.single_shot:
            self.write(self._cmd(command))

    def _ensure_session(self) -> None:
        """Byte order, data format and single-shot triggering, once per connection."""
        if self._session_ready:
            return
        self._send_session_setup()
        self.raise_errors("setting the data format and trigger mode")
        for name in ("start_hz", "stop_hz", "points", "ifbw_hz"):
            self._get(name)
        self._session_ready = True

    # -- traces and sweeps --------------------------------------------------------------------
    def define_traces(self, parameters: Sequence[str]) -> None:
        """Measure these S-parameters at each sweep, e.g. ``["S11", "S21"]``."""
        params = tuple(str(p).upper() for p in parameters)
        bad = [p for p in params if p not in S_PARAMETERS]
        if bad or not params or len(set(params)) != len(params):
            raise BadInput(
                f"{self.label}: traces must be distinct S-parameters among "
                f"{', '.join(S_PARAMETERS)}; got {list(parameters)}"
            )
        d = self.DIALECT
        self.write(self._cmd(d.traces_reset, n=len(params)))
        for i, param in enumerate(params, 1):
            self.write(self._cmd(d.trace_define, i=i, param=param))
        self._selected = 0
        self.raise_errors(f"define_traces({list(params)})")
        self._traces = params

    @property
    def traces(self) -> tuple[str, ...]:
        return self._traces

    def frequencies_hz(self) -> np.ndarray:
        """The sweep's frequency axis (linear sweep), as configured or read back."""
        if not {"start_hz", "stop_hz", "points"} <= set(self._cache):
            self._ensure_session()
        c = self._cache
        return np.linspace(c["start_hz"], c["stop_hz"], int(c["points"]))

    def expected_sweep_s(self) -> float:
        """Sweep time estimate: points × (1/IFBW + per-point overhead), ×2 for reverse."""
        c = self._cache
        one_way = c["points"] * (1.0 / c["ifbw_hz"] + PER_POINT_OVERHEAD_S)
        reverse = any(p in ("S12", "S22") for p in self._traces)
        return one_way * (2 if reverse else 1)

    def sweep_timeout_s(self) -> float:
        return self.timeout_s + self.sweep_timeout_margin * self.expected_sweep_s()

    def trigger_and_wait(self) -> None:
        """One sweep, synchronised with ``*OPC?`` under the derived timeout."""
        self._ensure_session()
        self.write(self._cmd(self.DIALECT.trigger))
        with self._timeout(self.sweep_timeout_s()):
            reply = self._query("*OPC?")
        if reply.strip() not in ("1", "+1"):
            self._stale = True
            raise InstrumentError(f"{self.label}: unexpected reply to '*OPC?': {reply[:40]!r}")

    def sweep_arrays(self) -> dict[str, np.ndarray]:
        """Trigger one sweep and return ``{"S21": complex[points], ...}`` (calibrated if set)."""
        if not self._traces:
            raise BadInput(f"{self.label}: call define_traces([...]) before sweeping")
        self.trigger_and_wait()
        d = self.DIALECT
        n = 2 * int(self._cache["points"])
        data = {}
        for i, param in enumerate(self._traces, 1):
            if d.trace_select and self._selected != i:
                self.write(self._cmd(d.trace_select, i=i, param=param))
                self._selected = i
            flat = self._query_values(self._cmd(d.trace_data, i=i, param=param), n)
            data[param] = flat[0::2] + 1j * flat[1::2]
        self.raise_errors(f"reading {', '.join(self._traces)}")
        corrected = self.correct(data)
        if self.data_hooks:  # the axis is only built for a listener
            self.data_hooks("spectrum", (self.frequencies_hz(), corrected))
        return corrected

    def sweep(self) -> Any:
        """Trigger one sweep and return an ``skrf.Network`` (Hz axis).

        Two-port unless only S11 is measured; S-parameters not measured are NaN.
        """
        return self._network(self.sweep_arrays())

    def _network(self, data: Mapping[str, np.ndarray]) -> Any:
        import skrf

        f = self.frequencies_hz()
        nports = 1 if set(data) == {"S11"} else 2
        s = np.full((len(f), nports, nports), np.nan + 0j)
        for param, values in data.items():
            s[:, int(param[1]) - 1, int(param[2]) - 1] = values
        freq = skrf.Frequency.from_f(f, unit="Hz")
        return skrf.Network(frequency=freq, s=s, name=f"{self.label} {' '.join(data)}")

    # -- lab duties ---------------------------------------------------------------------------
    def safe_state(self) -> None:
        """Switch the RF off, then confirm it with a short read-back.

        The off command goes out first, whatever state the exchange was left in by an
        earlier error. Only a read-back saying "off" counts as safe: a VNA that does not
        answer within ``min(timeout_s, 1 s)`` may have missed the command, so that is an
        error too, and ``labpnn safe-off`` reports the RF as not confirmed off.
        """
        command = f"{self._cmd(self.DIALECT.rf_on)} OFF"
        self.write(command)  # no drain first: a late reply must not delay the RF going off
        self._cache["rf_on"] = False
        wait_s = min(self.timeout_s, 1.0)
        try:
            with self._timeout(wait_s):
                still_on = self._get("rf_on")
        except InstrumentTimeout:
            raise InstrumentTimeout(
                f"{self.label}: sent '{command}' but the VNA at {self.address} did not confirm "
                f"the RF state within {wait_s:g} s; the RF may still be on: switch it off at "
                "the instrument"
            ) from None
        if still_on:
            raise InstrumentError(f"{self.label}: the RF output is still on after '{command}'")

    def identity(self) -> dict[str, str]:
        reply = self._query("*IDN?")
        with self._parsing():
            return parse_idn(reply)

    def shutdown(self) -> None:
        with contextlib.suppress(Exception):
            self.safe_state()
        super().shutdown()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.adapter.close()
