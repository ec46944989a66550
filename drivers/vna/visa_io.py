"""Talking to a VISA instrument so that every failure has a name an experimentalist can act on.

A mixin for the VNA driver (before pymeasure's ``Instrument`` in the MRO, since it wraps its
``write``/``read``). It turns pyvisa's failures into labpnn's vocabulary, naming the command:
a timeout is :class:`InstrumentTimeout`, a closed or refused connection :class:`DeviceLost`,
a block that stops half way or does not parse an :class:`InstrumentError`. After any of these
a late reply may still be on its way, so the next exchange first drains it.

Binary data go through pyvisa's ``query_binary_values`` (little-endian doubles) on a real
resource; under pymeasure's test adapter (``expected_protocol``) they are parsed by the same
strict, fuzzed parser as everything else (:mod:`labpnn.drivers.vna.replies`).

The host class provides ``label``, ``address``, ``timeout_s``, ``transfer_format`` and
pymeasure's ``adapter``, and sets ``_stale = False`` and ``_last_command = ""``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from labpnn.drivers.vna.replies import check_values, parse_ascii_values, parse_ieee_block
from labpnn.errors import DeviceLost, InstrumentError, InstrumentTimeout


class _ByteCounter:
    """pyvisa monitoring interface: how much of a block arrived before a failure."""

    def __init__(self) -> None:
        self.n = 0

    def update(self, n: int) -> None:
        self.n += n


class VisaExchange:
    """Exchanges with error naming, stale-reply draining and socket tuning."""

    label: str
    address: str | None
    timeout_s: float
    transfer_format: str
    _stale: bool
    _last_command: str
    _resource: Any = None  # the pyvisa resource; None under a test adapter

    def _attach_resource(self) -> None:
        """Find the pyvisa resource behind pymeasure's adapter and tune raw sockets.

        On a real resource, ``write``/``read`` go to it directly (pymeasure's adapter adds
        only logging there, and its attribute hooks cost ~0.1 ms per sweep); under
        ``expected_protocol`` they go through the adapter so every string is checked.
        """
        import pyvisa.resources

        conn = getattr(self.adapter, "connection", None)
        if isinstance(conn, pyvisa.resources.MessageBasedResource):
            self._resource = conn
            self._tune_socket()

    def _tune_socket(self) -> None:
        """Raw sockets: Nagle off, TCP keep-alive on.

        With Nagle on, a write followed by a query waits for the instrument's delayed ACK
        (about 40 ms per exchange), and some LAN firmware resets on coalesced writes.
        NI-VISA turns Nagle off by default; pyvisa-py 0.8 does not, and its
        ``VI_ATTR_TCPIP_NODELAY`` setter raises UnknownAttribute, so the option is set on
        its socket directly (nominal-io/instro#156 found the same).
        """
        import socket

        from pyvisa import constants

        sock = self._pyvisa_py_socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        res = self._resource
        if str(getattr(res, "resource_name", "")).upper().endswith("SOCKET"):
            for attribute in (constants.VI_ATTR_TCPIP_NODELAY, constants.VI_ATTR_TCPIP_KEEPALIVE):
                with contextlib.suppress(Exception):  # unsupported on some backends/platforms
                    res.set_visa_attribute(attribute, constants.VI_TRUE)

    def _pyvisa_py_socket(self) -> Any:
        """The raw socket under a pyvisa-py TCPIP SOCKET session, else None."""
        res = self._resource
        try:
            sock = res.visalib.sessions[res.session].interface
        except Exception:  # not pyvisa-py, not a socket session, or no resource at all
            return None
        return sock if hasattr(sock, "setsockopt") and hasattr(sock, "recv") else None

    def _failure(self, exc: BaseException, command: str, received: int = 0) -> Exception | None:
        """The labpnn error for a transport failure, or None if ``exc`` is not one."""
        import pyvisa

        if isinstance(exc, pyvisa.errors.VisaIOError):
            if exc.error_code != pyvisa.constants.StatusCode.error_timeout:
                return DeviceLost(
                    f"{self.label}: connection to {self.address} lost during '{command}': "
                    f"{exc.description}"
                )
            if self._peer_closed():
                return DeviceLost(
                    f"{self.label}: {self.address} closed the connection during '{command}' "
                    "(instrument rebooted, LAN cable pulled, or another client took over)"
                )
            self._stale = True
            waited = self._current_timeout_s()
            if received:
                return InstrumentError(
                    f"{self.label}: truncated binary block in reply to '{command}': "
                    f"{received} bytes arrived, then nothing for {waited:.3g} s"
                )
            return InstrumentTimeout(
                f"{self.label}: no reply to '{command}' within {waited:.3g} s. Is the "
                "VNA on, not showing a dialog, and is the sweep shorter than the timeout?"
            )
        if isinstance(exc, UnicodeDecodeError):
            # line noise, a wrong baud/encoding, or a reply meant for another client
            self._stale = True
            return InstrumentError(
                f"{self.label}: reply to '{command}' is not text (byte "
                f"{exc.object[exc.start : exc.start + 1]!r} at position {exc.start})"
            )
        if isinstance(exc, (pyvisa.errors.InvalidSession, OSError, EOFError)):
            return DeviceLost(
                f"{self.label}: connection to {self.address} failed during '{command}': {exc}. "
                "Is the VNA on and reachable?"
            )
        return None

    def _peer_closed(self) -> bool:
        """Did the instrument close a raw socket? pyvisa-py reports that as a timeout."""
        import socket

        sock = self._pyvisa_py_socket()
        if sock is None:
            return False
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:  # reset by peer, not connected
            return True

    @contextlib.contextmanager
    def _parsing(self) -> Iterator[None]:
        """Prefix reply-parser errors with the instrument's role; pair replies up again."""
        try:
            yield
        except (InstrumentTimeout, DeviceLost):
            raise
        except InstrumentError as exc:
            self._stale = True
            text = str(exc)
            if text.startswith(f"{self.label}:"):
                raise
            raise InstrumentError(f"{self.label}: {text}") from None

    def _current_timeout_s(self) -> float:
        res = self._resource
        return (res.timeout / 1000.0) if res is not None else self.timeout_s

    def write(self, command: str, **kwargs: Any) -> None:
        self._last_command = command
        try:
            if self._resource is not None:
                self._resource.write(command)
            else:
                super().write(command, **kwargs)
        except Exception as exc:
            failure = self._failure(exc, command)
            if failure is None:
                raise
            raise failure from None

    def read(self, **kwargs: Any) -> str:
        try:
            if self._resource is not None:
                return self._resource.read()
            return super().read(**kwargs)
        except Exception as exc:
            failure = self._failure(exc, self._last_command)
            if failure is None:
                raise
            raise failure from None

    def _query(self, command: str) -> str:
        if self._stale:
            self._drain()
        self.write(command)
        return self.read()

    def _drain(self) -> None:
        """Discard a late reply left over from a timeout, so replies pair up again."""
        self._stale = False
        res = self._resource
        if res is None:
            return
        old = res.timeout
        try:
            res.timeout = 50
            for _ in range(1000):
                res.read_raw()
        except Exception:  # a timeout is the expected way out
            pass
        finally:
            with contextlib.suppress(Exception):
                res.timeout = old

    @contextlib.contextmanager
    def _timeout(self, seconds: float) -> Iterator[None]:
        res = self._resource
        if res is None:
            yield
            return
        old = res.timeout
        res.timeout = int(seconds * 1000)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                res.timeout = old

    def _query_values(self, command: str, n_values: int) -> np.ndarray:
        """Float values from a data query, in the configured transfer format."""
        if self._stale:
            self._drain()
        if self.transfer_format == "ascii":
            reply = self._query(command)
            with self._parsing():
                return parse_ascii_values(reply, command, n_values)
        res = self._resource
        if res is None:  # test adapters: the same strict parser, fuzzed in the tests
            self.write(command)
            raw = self.read_bytes(-1)
            with self._parsing():
                return parse_ieee_block(raw, command, "<f8", n_values)
        import pyvisa

        counter = _ByteCounter()
        self._last_command = command
        try:
            values = res.query_binary_values(
                command,
                datatype="d",
                is_big_endian=False,
                container=np.array,
                header_fmt="ieee",
                expect_termination=True,
                chunk_size=max(20 * 1024, 16 * n_values + 64),
                monitoring_interface=counter,
                length_before_block=0,
                raise_on_late_block=True,
            )
        except (ValueError, RuntimeError, TypeError, pyvisa.errors.InvalidBinaryFormat) as exc:
            self._stale = True
            raise InstrumentError(
                f"{self.label}: garbage binary block in reply to '{command}': {exc}"
            ) from None
        except Exception as exc:
            failure = self._failure(exc, command, counter.n)
            if failure is None:
                raise
            raise failure from None
        with self._parsing():
            return check_values(np.asarray(values, dtype=float), command, n_values)
