"""Recoverable faults: pause, put things right, retry a bounded number of times, record it.

Borrowed from bluesky's suspenders: a transient condition (an instrument that timed
out once, a dropped connection that comes back, a saturated frame) pauses the step,
recovers and resumes it; it is an *event inside the run*, not a new status. Each
retry is written to the run's log (so it is in the HDF5 file), counted in the
file's ``/summary`` as ``retries``, and added to the ledger's ``run_events``. When
the retries run out, the last error propagates and the runner ends the run
``failed``, keeping the data and making the hardware safe.

Typical use inside ``execute``::

    frame = with_retries(camera.grab, procedure=self, what="grab frame",
                         recover=camera.reconnect)
    frame = grab_unsaturated(camera, procedure=self)
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from labpnn.errors import DeviceLost, InstrumentError, InstrumentTimeout, LimitError

T = TypeVar("T")
log = logging.getLogger("labpnn.run")

RECOVERABLE = (InstrumentTimeout, DeviceLost)


class CameraSaturated(InstrumentError):
    """Too many pixels at the camera's full scale, even at the shortest allowed exposure."""


class BadData(InstrumentError):
    """The instrument answered, but with data that cannot be right (NaN, empty)."""


def _run_id(procedure: Any) -> str:
    with contextlib.suppress(Exception):
        value = procedure.run.f.attrs["run_id"]
        return value.decode() if isinstance(value, bytes) else str(value)
    return ""


def record_retry(
    procedure: Any, what: str, attempt: int, max_retries: int, exc: BaseException
) -> None:
    """Write one retry into the run's log, summary and the ledger (never raises)."""
    message = f"retry {attempt}/{max_retries} of {what}: {type(exc).__name__}: {exc}"
    log.warning(message)
    if procedure is None:
        return
    count = getattr(procedure, "_retries_recorded", 0) + 1
    procedure._retries_recorded = count
    writer = getattr(procedure, "run", None)
    if writer is not None:
        with contextlib.suppress(Exception):
            writer.set_summary(retries=count)
    ledger = getattr(getattr(procedure, "registry", None), "ledger", None)
    run_id = _run_id(procedure)
    if ledger is not None and run_id:
        with contextlib.suppress(Exception):
            ledger.add_event(run_id, "retry", message)


def _wait(procedure: Any, seconds: float) -> None:
    """Wait on the bench's clock (virtual in fast simulation), and keep the watchdog fed."""
    clock = getattr(getattr(procedure, "station", None), "clock", None)
    (clock.sleep if clock is not None else time.sleep)(seconds)
    hook = getattr(procedure, "_progress_hook", None)
    if hook is not None and hasattr(hook, "last_progress"):
        hook.last_progress = time.monotonic()  # a deliberate pause is not a hang


def with_retries(
    fn: Callable[[], T],
    *,
    procedure: Any = None,
    what: str = "",
    retry_on: tuple[type[BaseException], ...] = RECOVERABLE,
    max_retries: int = 3,
    delay_s: float = 0.2,
    backoff: float = 2.0,
    recover: Callable[[], Any] | None = None,
    on_retry: Callable[[int, BaseException], Any] | None = None,
) -> T:
    """Call ``fn``; on a ``retry_on`` error pause, ``recover()``, and call it again.

    At most ``max_retries`` retries, waiting ``delay_s``, then ``delay_s*backoff``...
    A failure of ``recover`` itself counts as a failed attempt. The last error is
    re-raised with a note saying how many retries were made.
    """
    what = what or getattr(fn, "__name__", "the step")
    delay = delay_s
    attempt = 0
    while True:
        try:
            return fn()
        except retry_on as exc:
            if attempt >= max_retries:
                exc.add_note(f"gave up on {what} after {max_retries} retries")
                raise
            attempt += 1
            record_retry(procedure, what, attempt, max_retries, exc)
            if on_retry is not None:
                on_retry(attempt, exc)
            _wait(procedure, delay)
            delay *= backoff
            if recover is not None:
                try:
                    recover()
                except retry_on as again:
                    log.warning("recovery of %s failed: %s", what, again)


def saturated_fraction(frame: np.ndarray, full_scale: float | None = None) -> float:
    frame = np.asarray(frame)
    if full_scale is None:
        full_scale = np.iinfo(frame.dtype).max if frame.dtype.kind in "ui" else 1.0
    return float(np.mean(frame >= full_scale))


def grab_unsaturated(
    camera: Any,
    *,
    procedure: Any = None,
    grab: Callable[[], np.ndarray] | None = None,
    max_fraction: float = 1e-3,
    factor: float = 0.5,
    max_retries: int = 6,
    full_scale: float | None = None,
) -> np.ndarray:
    """A frame with at most ``max_fraction`` saturated pixels, shortening the exposure.

    Each retry halves (``factor``) the camera's ``exposure_s`` within its limits and is
    recorded like any other retry. Raises :class:`CameraSaturated` when even the
    shortest allowed exposure saturates, or the retries run out.
    """
    grab = grab or camera.grab
    full_scale = full_scale if full_scale is not None else getattr(camera, "full_scale", None)

    def attempt() -> np.ndarray:
        frame = grab()
        fraction = saturated_fraction(frame, full_scale)
        if not np.isfinite(np.asarray(frame, dtype=float)).all():
            raise BadData("the camera delivered a frame with NaN or infinite pixels")
        if fraction > max_fraction:
            raise CameraSaturated(
                f"{fraction:.1%} of pixels saturated at exposure_s="
                f"{camera.exposure_s:g} s (allowed {max_fraction:.1%})"
            )
        return frame

    def shorten() -> None:
        old = camera.exposure_s
        new = old * factor
        lowest = None
        with contextlib.suppress(Exception):
            lowest = camera.effective_range("exposure_s")[0]
        if lowest is not None and new < lowest:
            new = lowest
        if new >= old:
            raise CameraSaturated(
                f"the frame saturates even at the shortest allowed exposure_s={old:g} s; "
                f"reduce the illumination (laser power, ND filter)"
            )
        try:
            camera.exposure_s = new
        except LimitError as exc:
            raise CameraSaturated(f"cannot shorten the exposure further: {exc}") from None
        log.info("camera saturated: exposure_s %g s -> %g s", old, new)

    def recover_or_stop() -> None:
        try:
            shorten()
        except CameraSaturated as exc:
            raise _Unrecoverable(exc) from None

    try:
        return with_retries(
            attempt,
            procedure=procedure,
            what="camera saturation",
            retry_on=(CameraSaturated,),
            max_retries=max_retries,
            delay_s=0.0,
            recover=recover_or_stop,
        )
    except _Unrecoverable as wrapped:
        raise wrapped.args[0] from None


class _Unrecoverable(Exception):
    """Carries an error out of ``recover`` past ``with_retries``' retry_on filter."""
