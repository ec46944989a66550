"""VNA calibration with scikit-rf: measure the standards, build a OnePort or SOLT model.

This is the procedure-independent half of ``calibrate-vna``. Who connects each standard is
a callback, ``connect(standard, ports)`` with ``standard`` in short, open, load, thru and,
at the end, ``device``: on a real bench it asks the operator; on a simulated one it is
``station.world.operator_hook``, which connects the standard itself.

The *cal kit* describes the standards as their maker specifies them (all keys optional;
ideal standards when absent)::

    cal_kit:
      short: {delay_s: 3.0e-11}              # offset short: one-way delay of its 50 Ω line
      open:  {delay_s: 3.0e-11, c_f: 5e-14}  # offset open with fringing capacitance
      load:  {gamma: 0.0}                    # residual reflection of the load
      thru:  {delay_s: 0.0}                  # matched lossless thru

A station declares it under ``bench.layout.cal_kit``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

REFLECTS = ("short", "open", "load")
Connect = Callable[[str, tuple[int, ...]], None]


def _gamma(kind: str, f_hz: np.ndarray, spec: Mapping[str, Any] | None) -> np.ndarray:
    spec = spec or {}
    w = 2 * np.pi * f_hz
    if kind == "short":
        g = -np.ones(len(f_hz), dtype=complex)
    elif kind == "open":
        y = 1j * w * float(spec.get("c_f", 0.0)) * 50.0
        g = (1 - y) / (1 + y)
    elif kind == "load":
        g = np.full(len(f_hz), complex(spec.get("gamma", 0.0)))
    else:
        raise ValueError(f"'{kind}' is not a reflect standard ({', '.join(REFLECTS)})")
    return g * np.exp(-2j * w * float(spec.get("delay_s", 0.0)))


def ideal_standards(frequency: Any, cal_kit: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What each standard *should* read: 1-port networks for the reflects, a 2-port thru."""
    import skrf

    kit = cal_kit or {}
    f = np.asarray(frequency.f, dtype=float)
    out = {
        kind: skrf.Network(
            frequency=frequency,
            s=_gamma(kind, f, kit.get(kind))[:, None, None],
            name=f"ideal {kind}",
        )  # fmt: skip
        for kind in REFLECTS
    }
    t = np.exp(-2j * np.pi * f * float((kit.get("thru") or {}).get("delay_s", 0.0)))
    s = np.zeros((len(f), 2, 2), dtype=complex)
    s[:, 0, 1] = s[:, 1, 0] = t
    out["thru"] = skrf.Network(frequency=frequency, s=s, name="ideal thru")
    return out


def measure_standards(
    vna: Any,
    connect: Connect,
    ports: Sequence[int] = (1, 2),
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Sweep each standard; return the raw ``skrf.Network`` per standard name.

    ``ports=(1,)`` (or ``(2,)``) for a one-port calibration: short, open, load on that port.
    ``ports=(1, 2)`` for SOLT: each reflect on both ports at once, then the thru. The VNA's
    sweep settings must already be those of the later measurements; any calibration it had is
    suspended while the standards are measured (raw data are needed) and restored after.
    The device is reconnected at the end, even if a step fails.
    """
    ports = tuple(int(p) for p in ports)
    if ports not in ((1,), (2,), (1, 2)):
        raise ValueError(f"ports must be (1,), (2,) or (1, 2), got {ports}")
    two_port = len(ports) == 2
    traces_before = tuple(vna.traces)
    cal_before = vna.calibration
    vna.define_traces(["S11", "S21", "S12", "S22"] if two_port else [f"S{ports[0]}{ports[0]}"])
    vna.apply_calibration(None)
    measured: dict[str, Any] = {}
    try:
        for kind in REFLECTS + (("thru",) if two_port else ()):
            if progress:
                progress(f"connect {kind} to port(s) {', '.join(map(str, ports))}")
            connect(kind, ports)
            measured[kind] = vna.sweep()
    finally:
        connect("device", ports)
        if traces_before:
            vna.define_traces(traces_before)
        vna.apply_calibration(cal_before)
    return measured


def operator_connect(operator: Any) -> Connect:
    """A ``connect`` callback that asks ``labpnn.operator.Operator`` (a person, the GUI, or
    a simulated world's ``answer_operator``) to connect each standard."""
    from labpnn.operator import ConnectStandard

    def connect(standard: str, ports: tuple[int, ...]) -> None:
        operator.request(
            ConnectStandard(standard, port=ports[0], port2=ports[1] if len(ports) > 1 else None)
        )

    return connect


def _one_port(network: Any, port: int) -> Any:
    import skrf

    s = network.s[:, port - 1, port - 1] if network.nports > 1 else network.s[:, 0, 0]
    return skrf.Network(frequency=network.frequency, s=s[:, None, None], name=network.name)


def build_one_port(
    measured: Mapping[str, Any], port: int = 1, cal_kit: Mapping[str, Any] | None = None
) -> Any:
    """``skrf.calibration.OnePort`` from measured short, open and load on ``port``."""
    from skrf.calibration import OnePort

    frequency = measured["short"].frequency
    ideals = ideal_standards(frequency, cal_kit)
    return OnePort(
        measured=[_one_port(measured[k], port) for k in REFLECTS],
        ideals=[ideals[k] for k in REFLECTS],
    )


def build_solt(measured: Mapping[str, Any], cal_kit: Mapping[str, Any] | None = None) -> Any:
    """``skrf.calibration.SOLT`` (12-term) from reflects measured on both ports and a thru."""
    from skrf.calibration import SOLT, two_port_reflect

    frequency = measured["short"].frequency
    ideals = ideal_standards(frequency, cal_kit)
    return SOLT(
        measured=[measured[k] for k in REFLECTS] + [measured["thru"]],
        ideals=[two_port_reflect(ideals[k], ideals[k]) for k in REFLECTS] + [ideals["thru"]],
    )


def calibration_arrays(calibration: Any) -> dict[str, np.ndarray]:
    """The error terms as plain arrays, for a run file or the calibration registry (no pickle).

    Keys: ``frequency_hz`` and one complex array per scikit-rf error term (``directivity``,
    ``forward source match``...). :func:`calibration_from_arrays` rebuilds the calibration.
    """
    out = {"frequency_hz": np.asarray(calibration.frequency.f, dtype=float)}
    for name, values in calibration.coefs.items():
        out[name] = np.asarray(values, dtype=complex)
    return out


def calibration_from_arrays(arrays: Mapping[str, np.ndarray]) -> Any:
    """A scikit-rf calibration (OnePort or TwelveTerm-like) from :func:`calibration_arrays`."""
    import skrf
    from skrf.calibration import OnePort, TwelveTerm

    frequency = skrf.Frequency.from_f(np.asarray(arrays["frequency_hz"]), unit="Hz")
    coefs = {k: np.asarray(v) for k, v in arrays.items() if k != "frequency_hz"}
    if "forward directivity" in coefs:
        return TwelveTerm.from_coefs(frequency, coefs, n_thrus=1)
    return OnePort.from_coefs(frequency, coefs)


def max_error(corrected: np.ndarray, truth: np.ndarray) -> float:
    """Largest complex deviation |corrected - truth| (the ``/summary`` ``max_error``)."""
    return float(np.max(np.abs(np.asarray(corrected) - np.asarray(truth))))
