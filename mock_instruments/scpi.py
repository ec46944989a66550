"""Just enough SCPI for mock instruments: header matching, message splitting, binary blocks.

Real instruments accept the short form (``SENS``), the long form (``SENSE``), any letter
case, numeric suffixes (``SENS2``) and optional nodes (``TRIG[:SEQuence]:SINGle``). The mock
must too, or it would accept only what our drivers happen to send and hide dialect bugs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_NODE = re.compile(r"^([A-Z*]+)([a-z]*)(#?)$")


@dataclass(frozen=True)
class _Node:
    short: str
    long: str
    numbered: bool
    optional: bool


def _compile(pattern: str) -> tuple[_Node, ...]:
    """``"SOURce#:POWer[:LEVel][:IMMediate]"`` -> nodes (without the trailing ``?``)."""
    nodes = []
    for optional, name in re.findall(r"(\[?):?([A-Za-z*#]+)\]?", pattern):
        m = _NODE.match(name)
        if not m:
            raise ValueError(f"bad SCPI pattern node '{name}' in '{pattern}'")
        short, rest, hashmark = m.groups()
        nodes.append(_Node(short, short + rest.upper(), bool(hashmark), bool(optional)))
    return tuple(nodes)


def _split_node(text: str) -> tuple[str, int | None]:
    m = re.match(r"^([A-Za-z*]+)(\d*)$", text)
    if not m:
        return "", None
    return m.group(1).upper(), (int(m.group(2)) if m.group(2) else None)


def _match(nodes: tuple[_Node, ...], parts: list[str], suffixes: list[int]) -> list[int] | None:
    if not nodes:
        return suffixes if not parts else None
    head, rest = nodes[0], nodes[1:]
    if parts:
        mnemonic, suffix = _split_node(parts[0])
        if mnemonic in (head.short, head.long) and (suffix is None or head.numbered):
            extra = [suffix if suffix is not None else 1] if head.numbered else []
            found = _match(rest, parts[1:], suffixes + extra)
            if found is not None:
                return found
    if head.optional:
        return _match(rest, parts, suffixes + ([1] if head.numbered else []))
    return None


class CommandTable:
    """Maps SCPI headers to handlers ``handler(suffixes, args, query) -> reply | None``."""

    def __init__(self) -> None:
        self._entries: list[tuple[tuple[_Node, ...], bool, Callable]] = []
        self._seen: dict[str, tuple[Callable, list[int], bool] | None] = {}

    def add(self, pattern: str, handler: Callable) -> None:
        """``pattern`` ends with ``?`` for a query-only entry, ``?`` in brackets for both."""
        if pattern.endswith("[?]"):
            nodes = _compile(pattern[:-3])
            self._entries.append((nodes, False, handler))
            self._entries.append((nodes, True, handler))
        else:
            query = pattern.endswith("?")
            self._entries.append((_compile(pattern.rstrip("?")), query, handler))
        self._seen.clear()

    def lookup(self, header: str) -> tuple[Callable, list[int], bool] | None:
        """The handler, numeric suffixes and query flag for a header (memoised: clients
        repeat the same few headers thousands of times)."""
        try:
            return self._seen[header]
        except KeyError:
            pass
        found = self._search(header)
        if len(self._seen) < 4096:
            self._seen[header] = found
        return found

    def _search(self, header: str) -> tuple[Callable, list[int], bool] | None:
        query = header.endswith("?")
        text = header.rstrip("?").lstrip(":")
        if text.startswith("*"):
            parts = [text]
        else:
            parts = text.split(":")
        for nodes, is_query, handler in self._entries:
            if is_query != query:
                continue
            suffixes = _match(nodes, parts, [])
            if suffixes is not None:
                return handler, suffixes, query
        return None


def split_message(line: str) -> list[tuple[str, str]]:
    """Split ``"A 1;:B? 'x;y'"`` into ``[("A", "1"), ("B?", "'x;y'")]`` (quotes respected)."""
    out = []
    for unit in _split_unquoted(line, ";"):
        unit = unit.strip()
        if not unit:
            continue
        header, _, args = unit.partition(" ")
        out.append((header.strip(), args.strip()))
    return out


def split_args(args: str) -> list[str]:
    """Comma-separated arguments, quotes stripped: ``"'Trc1', 'S21'"`` -> ``["Trc1", "S21"]``."""
    if not args:
        return []
    return [a.strip().strip("'\"") for a in split_message_commas(args)]


def split_message_commas(text: str) -> list[str]:
    """Split at commas outside quotes, keeping quotes and white space."""
    return _split_unquoted(text, ",")


def _split_unquoted(text: str, sep: str) -> list[str]:
    """Split at ``sep`` outside '...' or "..." strings: a quoted ``;`` or ``,`` is data."""
    parts, current, quote = [], [], ""
    for ch in text:
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            current.append(ch)
        elif ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def ieee_block(payload: bytes) -> bytes:
    """IEEE 488.2 definite-length arbitrary block: ``#<n><length><payload>``."""
    length = str(len(payload)).encode()
    return b"#" + str(len(length)).encode() + length + payload


def parse_bool(arg: str) -> bool:
    value = arg.strip().upper()
    if value in ("1", "ON"):
        return True
    if value in ("0", "OFF"):
        return False
    raise ValueError(arg)
