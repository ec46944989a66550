"""A programmable metasurface's controller, on a serial port (USB CDC or RS-232), via pyserial.

Line protocol (ASCII, ``\\n``-terminated)::

    *IDN?        -> maker,model,serial,firmware
    NBITS?       -> number of elements (bits)
    SET <hex>    -> OK | ERR <reason>
    GET?         -> <hex>

The configuration is a number whose bit ``i`` drives element ``i``, written as
``ceil(n_bits/4)`` upper-case hex digits (40 elements -> 10 digits). Every ``SET`` is
acknowledged, so the driver knows the controller latched the configuration before the
VNA is triggered; the elements' own settling time is the bench's business.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from labpnn.errors import BadInput, ConfigError, DeviceLost, InstrumentError, InstrumentTimeout
from labpnn.settings import InstrumentSettings, Setting, refuse_unknown_options


def hex_digits(n_bits: int) -> int:
    return (int(n_bits) + 3) // 4


def bits_to_hex(bits: np.ndarray) -> str:
    bits = np.asarray(bits, dtype=bool).ravel()
    value = sum(1 << int(i) for i in np.flatnonzero(bits))
    return f"{value:0{hex_digits(len(bits))}X}"


def hex_to_bits(text: str, n_bits: int, command: str = "GET?") -> np.ndarray:
    text = text.strip()
    try:
        if len(text) != hex_digits(n_bits):
            raise ValueError
        value = int(text, 16)
    except ValueError:
        raise InstrumentError(
            f"reply to '{command}' is not {hex_digits(n_bits)} hex digits: {text[:40]!r}"
        ) from None
    if value >> n_bits:
        raise InstrumentError(f"reply to '{command}' sets bits above bit {n_bits - 1}: {text!r}")
    return np.array([(value >> i) & 1 for i in range(n_bits)], dtype=bool)


def _lost_errors() -> tuple[type[BaseException], ...]:
    """What a vanished port raises: pyserial's error, OS errors, and (POSIX) termios.error
    from flushing a tty whose device is gone."""
    import serial

    errors: tuple[type[BaseException], ...] = (serial.SerialException, OSError)
    try:
        import termios

        errors += (termios.error,)
    except ImportError:  # Windows
        pass
    return errors


class MetasurfaceController(InstrumentSettings):
    """Sets and reads the metasurface configuration (a numpy bool array of ``n_bits``).

    Options: ``port`` (``/dev/ttyUSB0``, ``COM3``), ``n_bits`` (40), ``baudrate`` (115200),
    ``timeout_s`` (1). ``connection`` injects an already open serial-like object (tests).
    """

    SETTINGS = (
        Setting(
            "n_bits", "", "Number of metasurface elements.", (1, 4096), kind=int, settable=False
        ),  # fmt: skip
        Setting("configuration_hex", "", "Current configuration, bit i = element i.", kind=str),
    )

    def __init__(
        self,
        label: str = "metasurface",
        limits: Mapping[str, Sequence[float]] | None = None,
        port: str | None = None,
        n_bits: int = 40,
        baudrate: int = 115200,
        timeout_s: float = 1.0,
        connection: Any = None,
        **options: Any,
    ):
        refuse_unknown_options(label, type(self), options)
        self._init_settings(label, limits)
        self.n_bits = self.check("n_bits", n_bits)
        self.port = port
        self.timeout_s = float(timeout_s)
        self._last_sent: np.ndarray | None = None
        if connection is not None:
            self._serial = connection
            return
        if not port:
            raise ConfigError(f"{label}: no serial port; set e.g. port: /dev/ttyUSB0 (or COM3)")
        import serial

        try:
            self._serial = serial.Serial(
                port, baudrate=int(baudrate), timeout=self.timeout_s, write_timeout=self.timeout_s
            )
        except (serial.SerialException, OSError) as exc:
            raise DeviceLost(
                f"{label}: cannot open serial port {port}: {exc}. Is the controller plugged "
                "in, and is the port right?"
            ) from None

    # -- transport ------------------------------------------------------------------------
    @contextlib.contextmanager
    def _io(self, command: str) -> Iterator[None]:
        try:
            yield
        except InstrumentError:
            raise
        except _lost_errors() as exc:
            raise DeviceLost(
                f"{self.label}: the metasurface controller on {self.port} vanished during "
                f"'{command}' ({exc}). Check its USB cable and power, then reconnect."
            ) from None

    def _ask(self, command: str) -> str:
        with self._io(command):
            self._serial.reset_input_buffer()  # a late reply from a timed-out exchange
            self._serial.write(command.encode("ascii") + b"\n")
            line = self._serial.readline()
        if not line.endswith(b"\n"):
            raise InstrumentTimeout(
                f"{self.label}: no reply to '{command}' within {self.timeout_s:g} s on "
                f"{self.port} (got {line[:40]!r}). Is the controller powered and running?"
            )
        reply = line.decode("ascii", "replace").strip()
        if reply.startswith("ERR"):
            raise InstrumentError(
                f"{self.label}: the controller refused '{command}': {reply[3:].strip() or reply}"
            )
        return reply

    # -- configuration --------------------------------------------------------------------
    @property
    def configuration(self) -> np.ndarray:
        """The configuration the controller reports (``GET?``), bool ``[n_bits]``."""
        return hex_to_bits(self._ask("GET?"), self.n_bits)

    @configuration.setter
    def configuration(self, bits: Any) -> None:
        bits = np.asarray(bits)
        if bits.shape != (self.n_bits,):
            raise BadInput(
                f"{self.label}: a configuration has {self.n_bits} elements, got shape {bits.shape}"
            )
        if not np.isin(bits, (0, 1)).all():
            raise BadInput(f"{self.label}: configuration values must be 0/1 or bool")
        self.set_hex(bits_to_hex(bits.astype(bool)))
        self._last_sent = bits.astype(bool)

    def set_hex(self, text: str) -> None:
        command = f"SET {text}"
        reply = self._ask(command)
        if reply != "OK":
            raise InstrumentError(f"{self.label}: unexpected reply to '{command}': {reply[:40]!r}")

    @property
    def configuration_hex(self) -> str:
        return self._ask("GET?")

    @configuration_hex.setter
    def configuration_hex(self, text: str) -> None:
        self.configuration = hex_to_bits(str(text), self.n_bits, "configuration_hex")

    # -- lab duties -------------------------------------------------------------------------
    def safe_state(self) -> None:
        """All elements off (configuration zero)."""
        self.configuration = np.zeros(self.n_bits, dtype=bool)

    def identity(self) -> dict[str, str]:
        parts = [p.strip() for p in self._ask("*IDN?").split(",", 3)] + [""] * 4
        info = dict(zip(("maker", "model", "serial", "firmware"), parts))
        reported = self._ask("NBITS?")
        if reported != str(self.n_bits):
            raise ConfigError(
                f"{self.label}: the controller drives {reported} elements but the station "
                f"config says n_bits={self.n_bits}"
            )
        info["n_bits"] = reported
        return info

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._serial.close()
