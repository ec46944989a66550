"""GenICam feature access shared by the SDK back-ends (pypylon, harvesters).

Both SDKs expose each GenICam feature as an attribute of a node map, with the same
value/min/max/inc members under different spellings. Keeping the logic here means a
fix to feature access or to error wording reaches every camera back-end at once.
"""

from __future__ import annotations

import contextlib
from typing import Any

from labpnn.drivers.camera.base import Camera, is_timeout
from labpnn.errors import DeviceLost, InstrumentError, InstrumentTimeout


class NodeMapCamera(Camera):
    """A :class:`Camera` whose features are attributes of an SDK's GenICam node map.

    A back-end names its node map (:meth:`_node_map`) and, where its SDK capitalises
    them, the node members (``VALUE``, ``MIN``, ``MAX``, ``INC``).
    """

    VALUE, MIN, MAX, INC = "value", "min", "max", "inc"  # genicam's spelling

    def _node_map(self) -> Any:
        """The SDK object whose attributes are the camera's features."""
        raise NotImplementedError

    def _node(self, name: str) -> Any:
        try:
            return getattr(self._node_map(), name)
        except Exception:
            raise InstrumentError(f"{self.label}: this camera has no '{name}' feature") from None

    def _has(self, name: str) -> bool:
        try:
            getattr(self._node_map(), name)
        except Exception:
            return False
        return True

    def _read(self, name: str) -> Any:
        """SDK read errors do not say which feature failed; ours do."""
        node = self._node(name)
        try:
            return getattr(node, self.VALUE)
        except Exception as exc:
            raise InstrumentError(f"{self.label}: cannot read {name}: {exc}") from None

    def _write(self, name: str, value: Any) -> None:
        node = self._node(name)
        try:
            setattr(node, self.VALUE, value)
        except Exception as exc:
            raise InstrumentError(f"{self.label}: cannot set {name}={value!r}: {exc}") from None

    def _bounds(self, name: str) -> tuple[float, float, float | None]:
        node = self._node(name)
        inc = None
        with contextlib.suppress(Exception):  # not every numeric feature has an increment
            inc = getattr(node, self.INC)
        return getattr(node, self.MIN), getattr(node, self.MAX), inc

    def _fetch_error(self, exc: Exception, timeout_s: float) -> Exception:
        """What a failed SDK fetch becomes: a timeout, or a device that stopped delivering."""
        if is_timeout(exc):
            return InstrumentTimeout(self._timeout_message(timeout_s))
        return DeviceLost(f"{self.label}: camera {self.serial} failed to deliver: {exc}")
