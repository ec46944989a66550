"""Parsers for what a VNA sends back: binary blocks, ASCII values, error-queue entries, *IDN?.

Every parser either returns a clean value or raises :class:`~labpnn.errors.InstrumentError`
naming the command whose reply was bad, never an IndexError or a numpy error: a corrupt
reply is a fact about the instrument, and the experimentalist needs to know which exchange
went wrong. These functions are fuzzed with hypothesis in the tests.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from labpnn.errors import InstrumentError

_ERROR_ENTRY = re.compile(r'^\s*([+-]?\d+)\s*,\s*"(.*)"\s*$', re.DOTALL)


def _shown(raw: bytes | str, limit: int = 40) -> str:
    text = raw if isinstance(raw, str) else raw[:limit].decode("latin-1")
    return repr(text[:limit]) + ("..." if len(raw) > limit else "")


def parse_ieee_block(
    raw: bytes,
    command: str,
    dtype: str = "<f8",
    n_values: int | None = None,
) -> np.ndarray:
    """Decode an IEEE 488.2 definite-length block ``#<n><length><data>[\\n]``.

    ``n_values`` (if given) is how many values the command must return, e.g. twice the
    number of points for complex data; anything else means a truncated or foreign block.
    """
    raw = bytes(raw)
    if not raw.startswith(b"#") or len(raw) < 2:
        raise InstrumentError(
            f"reply to '{command}' is not a binary block (it should start with '#'): {_shown(raw)}"
        )
    digits = raw[1:2]
    if not digits.isdigit() or digits == b"0":
        raise InstrumentError(
            f"reply to '{command}' has a malformed binary block header {_shown(raw[:12])}: "
            "expected '#' followed by the number of length digits (1-9)"
        )
    n = int(digits)
    length_field = raw[2 : 2 + n]
    if len(length_field) != n or not length_field.isdigit():
        raise InstrumentError(
            f"reply to '{command}' has a malformed binary block length {_shown(raw[: 2 + n])}"
        )
    length = int(length_field)
    body = raw[2 + n :]
    if body.endswith(b"\n") and len(body) == length + 1:
        body = body[:-1]
    itemsize = np.dtype(dtype).itemsize
    if len(body) < length:
        raise InstrumentError(
            f"truncated binary block in reply to '{command}': the header announced {length} "
            f"bytes but only {len(body)} arrived"
        )
    if len(body) > length:
        raise InstrumentError(
            f"reply to '{command}' has {len(body) - length} unexpected bytes after its "
            f"{length}-byte binary block"
        )
    if length % itemsize:
        raise InstrumentError(
            f"binary block in reply to '{command}' has {length} bytes, not a whole number of "
            f"{itemsize}-byte values (wrong FORM setting?)"
        )
    values = np.frombuffer(body, dtype=dtype).astype(float)
    return check_values(values, command, n_values)


# SCPI-99 sends NaN as 9.91E+37 and ±infinity as ±9.9E+37: numbers to float(), not data.
SCPI_NOT_A_NUMBER = 9.9e37


def _finite(values: Any) -> bool:
    values = np.asarray(values, dtype=float)
    return bool(np.all(np.isfinite(values)) and np.all(np.abs(values) < SCPI_NOT_A_NUMBER))


def check_values(values: np.ndarray, command: str, n_values: int | None = None) -> np.ndarray:
    """The count and finiteness checks shared by the binary and ASCII paths."""
    if n_values and len(values) == 0:
        raise InstrumentError(
            f"reply to '{command}' is an empty or malformed data block (garbage on the line?)"
        )
    if n_values is not None and len(values) != n_values:
        raise InstrumentError(
            f"reply to '{command}' has {len(values)} values, expected {n_values} "
            "(truncated transfer, or the sweep settings changed on the instrument)"
        )
    if not _finite(values):
        raise InstrumentError(
            f"reply to '{command}' contains non-finite values (NaN/Inf, or SCPI's 9.91E37 "
            "'not a number'): wrong byte order (FORM:BORD), a corrupt transfer, or an "
            "overloaded receiver"
        )
    return values


def parse_ascii_values(text: str | bytes, command: str, n_values: int | None = None) -> np.ndarray:
    """Comma-separated numbers, as sent in ``FORM ASC``."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    text = text.strip()
    if not text:
        raise InstrumentError(f"empty reply to '{command}'")
    try:
        values = np.array([float(v) for v in text.split(",")], dtype=float)
    except ValueError:
        raise InstrumentError(
            f"reply to '{command}' is not a list of numbers: {_shown(text)}"
        ) from None
    return check_values(values, command, n_values)


def parse_error_entry(reply: str | bytes, command: str = "SYST:ERR?") -> tuple[int, str]:
    """``-113,"Undefined header"`` -> ``(-113, "Undefined header")``."""
    if isinstance(reply, bytes):
        reply = reply.decode("latin-1")
    m = _ERROR_ENTRY.match(reply)
    if not m:
        raise InstrumentError(
            f"reply to '{command}' is not an error-queue entry (code,\"message\"): {_shown(reply)}"
        )
    return int(m.group(1)), m.group(2)


def parse_bool_reply(reply: str | bytes, command: str) -> bool:
    if isinstance(reply, bytes):
        reply = reply.decode("latin-1")
    value = reply.strip().upper()
    if value in ("1", "ON", "+1"):
        return True
    if value in ("0", "OFF", "+0"):
        return False
    raise InstrumentError(f"reply to '{command}' is not ON/OFF: {_shown(reply)}")


def parse_number(reply: str | bytes, command: str) -> float:
    if isinstance(reply, bytes):
        reply = reply.decode("latin-1")
    try:
        value = float(reply.strip())
    except ValueError:
        raise InstrumentError(f"reply to '{command}' is not a number: {_shown(reply)}") from None
    if not _finite(value):
        raise InstrumentError(f"reply to '{command}' is not a finite number: {_shown(reply)}")
    return value


def parse_idn(reply: str | bytes) -> dict[str, str]:
    """``maker,model,serial,firmware`` (extra commas stay in the firmware field)."""
    if isinstance(reply, bytes):
        reply = reply.decode("latin-1")
    parts = [p.strip() for p in reply.strip().split(",", 3)]
    if len(parts) < 2 or not parts[0]:
        raise InstrumentError(
            f"reply to '*IDN?' is not 'maker,model,serial,firmware': {_shown(reply)}"
        )
    parts += [""] * (4 - len(parts))
    return dict(zip(("maker", "model", "serial", "firmware"), parts))
