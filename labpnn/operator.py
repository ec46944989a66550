"""The operator role: structured requests from a procedure to a person.

Some calibrations need hands: "connect the SHORT standard to port 1". A procedure
asks ``self.operator.request(ConnectStandard("short", port=1))`` and the front end
answers it: the terminal prompts, the GUI shows a dialog, a simulated world connects
the standard itself. An unattended run (scheduled, or no terminal) fails at once with
a clear message, unless the station can answer by itself (simulated standards, or an
electronic calibration unit exposing ``answer_operator``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass
from typing import Any

from labpnn.errors import LabpnnError


class OperatorUnavailable(LabpnnError):
    """A request needs a person, and none is there to answer it."""


@dataclass(frozen=True)
class ConnectStandard:
    standard: str  # "short", "open", "load", "thru" or "device"
    port: int = 1
    port2: int | None = None

    @property
    def text(self) -> str:
        if self.standard == "device":
            return "Reconnect the device under test to the VNA ports."
        where = f"port {self.port}" + (f" and port {self.port2}" if self.port2 else "")
        return f"Connect the {self.standard.upper()} standard to {where}."

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "connect-standard", **asdict(self), "text": self.text}


class Operator:
    """Routes requests to whoever can answer: the station, the GUI, or a terminal."""

    def __init__(self, station: Any = None, unattended: bool = False, live: str | None = None):
        self.station = station
        self.unattended = unattended
        self.live = live
        self.requests: list[dict[str, Any]] = []

    @classmethod
    def for_run(cls, station: Any, started_by: str) -> Operator:
        unattended = started_by.startswith(("schedule", "queue"))
        return cls(station, unattended=unattended, live=os.environ.get("LABPNN_LIVE"))

    def request(self, request: Any, timeout_s: float = 3600.0) -> dict[str, Any]:
        payload = request.to_dict()
        self.requests.append(payload)
        for device in self._automatic_answerers():
            answer = device.answer_operator(payload)
            if answer is not None:
                return {"answered_by": "station", **answer}
        if self.live:
            from labpnn.live import ask_operator

            return {"answered_by": "gui", **ask_operator(payload, timeout_s, self.live)}
        if self.unattended or not sys.stdin or not sys.stdin.isatty():
            raise OperatorUnavailable(
                f"this step needs a person: {payload['text']} The run is unattended, so it "
                f"stops here; run it attended (terminal or GUI), or give the station an "
                f"electronic calibration unit."
            )
        import click

        if not click.confirm(f"OPERATOR: {payload['text']} Done?", default=True, err=True):
            raise OperatorUnavailable(f"the operator declined: {payload['text']}")
        return {"answered_by": "terminal", "done": True}

    def _automatic_answerers(self) -> list[Any]:
        if self.station is None:
            return []
        found = [d for d in self.station.instruments.values() if hasattr(d, "answer_operator")]
        world = getattr(self.station, "world", None)
        if world is not None and hasattr(world, "answer_operator"):
            found.append(world)
        return found
