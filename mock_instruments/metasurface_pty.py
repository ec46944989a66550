"""A mock metasurface controller on a pseudo-terminal, so pyserial runs for real.

The "firmware" reads lines from the master side of an ``os.openpty()`` pair on a thread;
the driver opens the slave side (``/dev/pts/N``) with pyserial exactly as it would open
``/dev/ttyUSB0``. Line protocol (``\\n``-terminated, ASCII)::

    *IDN?            -> labpnn,MockMetasurface,SIM-0001,0.1.0
    NBITS?           -> 40
    SET <hex>        -> OK | ERR <reason>     (bit i of the configuration is bit i of the number)
    GET?             -> <hex>                  (ceil(n_bits/4) upper-case digits)
    anything else    -> ERR unknown command

Each accepted ``SET`` updates the simulated cavity that the mock VNA measures. Faults:
``vanish()`` closes the master side, as if the USB cable were pulled (the driver's next read
or write fails with an I/O error); ``hang`` keeps reading but never answers.

Linux/macOS only (ptys), like every mock convenience that DESIGN.md allows to be POSIX-only.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from collections.abc import Callable

import numpy as np

IDN = "labpnn,MockMetasurface,SIM-{seed:04d},0.1.0"


def hex_digits(n_bits: int) -> int:
    return (int(n_bits) + 3) // 4


class MetasurfacePty:
    """Serves the controller protocol on a pty; ``on_set(bits)`` applies a configuration."""

    def __init__(
        self,
        n_bits: int,
        on_set: Callable[[np.ndarray], None],
        seed: int = 0,
        reply_delay_s: float = 0.0,
    ):
        self.n_bits = int(n_bits)
        self.on_set = on_set
        self.idn = IDN.format(seed=seed)
        self.reply_delay_s = float(reply_delay_s)
        self.bits = np.zeros(self.n_bits, dtype=bool)
        self.sets = 0
        self.hang = False
        self.vanish_after_sets: int | None = None
        self.log: list[str] = []
        self._master, self._slave = os.openpty()
        self.port = os.ttyname(self._slave)
        _make_raw(self._slave)
        self._stop = threading.Event()
        self._fd_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="mock-metasurface", daemon=True)

    def start(self) -> MetasurfacePty:
        self._thread.start()
        return self

    # -- faults ------------------------------------------------------------------------
    def vanish(self) -> None:
        """Close the device side now: the driver sees the device disappear.

        The firmware thread is stopped first, so no descriptor is closed while it may still
        be selecting on it (a reused descriptor number would be read by mistake).
        """
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(2)
        with self._fd_lock:
            for name in ("_master", "_slave"):
                fd = getattr(self, name)
                setattr(self, name, -1)
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)

    @property
    def vanished(self) -> bool:
        return self._master < 0

    # -- firmware ------------------------------------------------------------------------
    def _run(self) -> None:
        buffer = b""
        while not self._stop.is_set():
            fd = self._master
            if fd < 0:
                return
            try:
                ready, _, _ = select.select([fd], [], [], 0.1)
                if not ready:
                    continue
                chunk = os.read(fd, 4096)
            except (OSError, ValueError):
                return
            if not chunk:
                continue
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                reply = self.handle(line.decode("ascii", "replace").strip())
                if reply is None or self.hang:
                    continue
                if self.reply_delay_s > 0:
                    time.sleep(self.reply_delay_s)
                try:
                    os.write(self._master, reply.encode() + b"\n")
                except (OSError, ValueError):
                    return
            if self.vanish_after_sets is not None and self.sets >= self.vanish_after_sets:
                self.vanish()
                return

    def handle(self, line: str) -> str | None:
        if not line:
            return None
        self.log.append(line)
        command, _, arg = line.partition(" ")
        command = command.upper()
        if command == "*IDN?":
            return self.idn
        if command == "NBITS?":
            return str(self.n_bits)
        if command == "GET?":
            return encode_bits(self.bits)
        if command == "SET":
            arg = arg.strip()
            if len(arg) != hex_digits(self.n_bits):
                return f"ERR wrong length: expected {hex_digits(self.n_bits)} hex digits"
            try:
                value = int(arg, 16)
            except ValueError:
                return "ERR bad hex"
            if value >> self.n_bits:
                return f"ERR value has bits above bit {self.n_bits - 1}"
            bits = np.array([(value >> i) & 1 for i in range(self.n_bits)], dtype=bool)
            self.on_set(bits)
            self.bits = bits
            self.sets += 1
            return "OK"
        return "ERR unknown command"

    def close(self) -> None:
        self.vanish()


def encode_bits(bits: np.ndarray) -> str:
    value = 0
    for i, b in enumerate(np.asarray(bits, dtype=bool)):
        if b:
            value |= 1 << i
    return f"{value:0{hex_digits(len(bits))}X}"


def _make_raw(fd: int) -> None:
    """No echo, no line editing, no CR/LF translation: a byte pipe like a USB serial port."""
    import termios
    import tty

    with contextlib.suppress(termios.error):
        tty.setraw(fd)
