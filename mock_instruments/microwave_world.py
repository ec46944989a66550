"""The simulated microwave bench: one cavity, seen by a mock VNA and set by a mock metasurface.

The station builds this world for ``bench.kind: microwave`` when instruments are simulated.
The world starts the mock VNA server (asyncio thread, loopback, free port) and the
metasurface controller's pseudo-terminal, and hands their addresses to the *unmodified*
drivers (:meth:`driver_kwargs`). Both mocks act on the same state: the metasurface's
configuration, what is connected to the VNA's ports (the device or a calibration standard),
and the world's clock.

Timeline of one measurement (all durations on the world's clock; ``clock: fast`` advances a
virtual clock instead of waiting):

* ``SET`` over serial: the controller latches after ``switch_time_s``; the elements then
  need ``settle_time_s`` to settle. Sweep points taken before that still see the previous
  configuration, so a bench that does not wait shows up in tests.
* VNA trigger: the sweep lasts ``points·(1/ifbw + 5 µs) + 1 ms`` (twice with reverse
  parameters); trace noise is complex Gaussian with standard deviation
  ``noise · sqrt(ifbw / 1 kHz) · 10^(-power_dbm/20)`` on each raw S-parameter.
* Optional thermal drift: every mode frequency scales by ``1 - drift_per_s · t``.

``simulation`` keys (all optional): ``seed`` (1), ``clock`` (``fast`` | ``real-time``),
``transport`` (``full`` | ``direct``, read by the bench), ``noise`` (a number, or
``{floor: ...}``; 1e-4), ``n_modes`` (60), ``band_hz`` ([1.9e9, 2.6e9]), ``q_factor`` (800),
``coupling`` (0.3), ``bit_strength`` (4.0), ``error_boxes`` (true), ``switch_time_s``
(2e-4), ``settle_time_s`` (1e-3), ``drift_per_s`` (0), ``cal_kit`` (the *true* standards;
defaults to ``layout.cal_kit``, the declared ones, else ideal), ``faults`` (see
:data:`FAULT_KEYS`), ``host`` / ``vna_port`` (loopback, 0 = free port).
``layout`` keys used here: ``n_bits`` (40), ``cal_kit``.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from labpnn.clock import VirtualClock, WallClock, let_time_pass
from labpnn.errors import ConfigError
from labpnn.mock_instruments.metasurface_pty import IDN as METASURFACE_IDN
from labpnn.mock_instruments.metasurface_pty import MetasurfacePty
from labpnn.mock_instruments.physics.microwave import (
    MetasurfaceCavity,
    cascade,
    flip_ports,
    random_error_box,
    standard_gamma,
    thru_s,
)
from labpnn.mock_instruments.vna_server import IDN as VNA_IDN
from labpnn.mock_instruments.vna_server import MockVNA, VNAServer, VNAState

# simulation.faults: {key: count}; the fault switches on after that many sweeps / sets.
FAULT_KEYS = {
    "vna_hang_after_sweeps": ("vna", "hang"),
    "vna_drop_after_sweeps": ("vna", "drop"),
    "vna_garbage_after_sweeps": ("vna", "garbage"),
    "vna_truncate_after_sweeps": ("vna", "truncate"),
    "metasurface_vanish_after_sets": ("metasurface", "vanish"),
}
STANDARDS = ("short", "open", "load", "thru")


class MicrowaveWorld:
    """Cavity + metasurface + hidden error boxes, served to real drivers."""

    def __init__(
        self,
        layout: Mapping[str, Any],
        simulation: Mapping[str, Any],
        instruments: Mapping[str, Any],
        serve_metasurface: bool = True,
    ):
        self.layout, self.simulation = dict(layout or {}), dict(simulation or {})
        self.instruments = dict(instruments or {})
        sim = self.simulation
        self.seed = int(sim.get("seed", 1))
        mode = str(sim.get("clock", "fast"))
        if mode not in ("fast", "real-time"):
            raise ConfigError(f"bench.simulation.clock must be 'fast' or 'real-time', got '{mode}'")
        self.clock = VirtualClock() if mode == "fast" else WallClock()
        self.n_bits = int(self.layout.get("n_bits", 40))
        self.cavity = MetasurfaceCavity(
            n_bits=self.n_bits,
            n_modes=int(sim.get("n_modes", 60)),
            band_hz=tuple(sim.get("band_hz", (1.9e9, 2.6e9))),
            q_factor=float(sim.get("q_factor", 800.0)),
            coupling=float(sim.get("coupling", 0.3)),
            bit_strength=float(sim.get("bit_strength", 4.0)),
            seed=self.seed,
        )
        box_rng = np.random.default_rng([self.seed, 0xB0C5])
        self.error_boxes = (random_error_box(box_rng), random_error_box(box_rng))
        self.error_boxes_on = bool(sim.get("error_boxes", True))
        self.noise_floor = _noise_floor(sim.get("noise", 1e-4))
        self.switch_time_s = float(sim.get("switch_time_s", 2e-4))
        self.settle_time_s = float(sim.get("settle_time_s", 1e-3))
        self.drift_per_s = float(sim.get("drift_per_s", 0.0))
        self.cal_kit = dict(sim.get("cal_kit") or self.layout.get("cal_kit") or {})
        self.rng = np.random.default_rng([self.seed, 0x401])  # trace noise
        self.bits = np.zeros(self.n_bits, dtype=bool)
        self.previous_bits = self.bits.copy()
        self.bits_latched_at = -math.inf
        self.connection: tuple[str, tuple[int, ...]] = ("device", (1, 2))
        self.lock = threading.RLock()
        self.drivers: dict[str, Any] = {}

        self.vna = MockVNA(self._measure, VNA_IDN.format(seed=self.seed), self.clock.realtime)
        self.metasurface: MetasurfacePty | None = None
        self.vna_server = VNAServer(
            self.vna, str(sim.get("host", "127.0.0.1")), int(sim.get("vna_port", 0))
        )
        self.vna_server.start()
        try:
            if serve_metasurface:
                self.metasurface = MetasurfacePty(
                    self.n_bits,
                    self.set_configuration,
                    seed=self.seed,
                    reply_delay_s=self.switch_time_s if self.clock.realtime else 0.0,
                ).start()
            self._schedule_faults(sim.get("faults") or {})
        except BaseException:
            self.close()
            raise

    # -- addresses for the station ----------------------------------------------------
    @property
    def vna_address(self) -> str:
        return self.vna_server.address

    @property
    def metasurface_port(self) -> str:
        if self.metasurface is None:
            raise ConfigError("this microwave world serves no metasurface controller")
        return self.metasurface.port

    def _role_kind(self, role: str) -> str:
        driver = str(getattr(self.instruments.get(role), "driver", "")).lower()
        for kind in ("metasurface", "vna"):
            if role == kind or kind in driver:
                return kind
        raise ConfigError(
            f"the simulated microwave bench has a 'vna' and a 'metasurface'; it cannot "
            f"simulate instrument '{role}' ({driver or 'unknown driver'})"
        )

    def driver_kwargs(self, role: str, options: Mapping[str, Any]) -> dict[str, Any]:
        """Where each driver should connect: the mock server's VISA address, the pty path."""
        kind = self._role_kind(role)
        if kind == "vna":
            return {"address": self.vna_address}
        kwargs: dict[str, Any] = {"port": self.metasurface_port}
        if "n_bits" not in options:
            kwargs["n_bits"] = self.n_bits
        return kwargs

    def wire(self, role: str, driver: Any) -> None:
        """Remember the drivers; check the controller's bit count matches the simulated one."""
        self.drivers[role] = driver
        n_bits = getattr(driver, "n_bits", None)
        if self._role_kind(role) == "metasurface" and n_bits not in (None, self.n_bits):
            raise ConfigError(
                f"{role}: n_bits={n_bits} in the instrument options, but bench.layout.n_bits="
                f"{self.n_bits}; make them agree"
            )

    # -- what the mocks do ------------------------------------------------------------
    def set_configuration(self, bits: np.ndarray) -> None:
        """The controller latched a new configuration (called from the pty thread)."""
        bits = np.asarray(bits, dtype=bool).reshape(self.n_bits)
        with self.lock:
            if not self.clock.realtime:
                self.clock.sleep(self.switch_time_s)
            self.previous_bits, self.bits = self.bits, bits.copy()
            self.bits_latched_at = self.clock.now()

    def connect_standard(self, kind: str, ports: tuple[int, ...] | list[int] | int = (1,)) -> None:
        """Connect a calibration standard in place of the device (as an operator would).

        ``kind``: short, open, load (on each of ``ports``) or thru (between ports 1 and 2).
        A port without a standard keeps seeing the cavity; S21 is zero while a reflect
        standard is on either port.
        """
        ports = (ports,) if isinstance(ports, int) else tuple(int(p) for p in ports)
        if kind not in STANDARDS:
            raise ValueError(f"unknown standard '{kind}' (known: {', '.join(STANDARDS)})")
        if not ports or any(p not in (1, 2) for p in ports):
            raise ValueError(f"ports must be 1 and/or 2, got {ports}")
        if kind == "thru" and sorted(ports) != [1, 2]:
            raise ValueError("a thru connects ports 1 and 2")
        with self.lock:
            self.connection = (kind, ports)

    def connect_device(self) -> None:
        """Reconnect the cavity's antennas to both ports."""
        with self.lock:
            self.connection = ("device", (1, 2))

    def operator_hook(self, standard: str, ports: tuple[int, ...]) -> None:
        """Answer ``labpnn.calibration.vna.measure_standards`` requests automatically."""
        if standard == "device":
            self.connect_device()
        else:
            self.connect_standard(standard, ports)

    def answer_operator(self, request: Mapping[str, Any]) -> dict[str, Any] | None:
        """``labpnn.operator`` hook: connect the requested standard as a person would."""
        if request.get("kind") != "connect-standard":
            return None
        ports = tuple(int(p) for p in (request.get("port", 1), request.get("port2")) if p)
        self.operator_hook(str(request["standard"]), ports)
        return {"done": True, "standard": request["standard"], "ports": list(ports)}

    # -- physics of one sweep -----------------------------------------------------------
    def _frequency_scale(self, t: float) -> float:
        return 1.0 - self.drift_per_s * t if self.drift_per_s else 1.0

    def _device(self, f: np.ndarray, bits: np.ndarray, t: float) -> np.ndarray:
        return self.cavity.s_params(bits[None], f, self._frequency_scale(t))[0]

    def _embedded(self, f: np.ndarray, cavity_s: np.ndarray) -> np.ndarray:
        """What sits between the error boxes: the cavity or a calibration standard."""
        kind, ports = self.connection
        if kind == "device":
            return cavity_s
        if kind == "thru":
            return thru_s(f, self.cal_kit.get("thru"))
        dut = np.zeros_like(cavity_s)
        for p in (1, 2):
            if p in ports:
                dut[:, p - 1, p - 1] = standard_gamma(kind, f, self.cal_kit.get(kind))
            else:
                dut[:, p - 1, p - 1] = cavity_s[:, p - 1, p - 1]
        return dut

    def _raw(self, f: np.ndarray, dut: np.ndarray) -> np.ndarray:
        if not self.error_boxes_on:
            return dut
        x = self.error_boxes[0].s(f)
        y = flip_ports(self.error_boxes[1].s(f))
        return cascade(cascade(x, dut), y)

    def _noise(self, state: VNAState, n: int) -> np.ndarray:
        z = self.rng.standard_normal((n, 2, 2, 2))
        sigma = self.noise_floor * math.sqrt(state.ifbw_hz / 1e3) * 10 ** (-state.power_dbm / 20)
        return sigma * (z[..., 0] + 1j * z[..., 1]) / math.sqrt(2.0)

    def _sweep(
        self, state: VNAState, cavity_s: np.ndarray | None = None
    ) -> tuple[np.ndarray, float]:
        """One raw sweep at the current time; advances a virtual clock by its duration.

        ``cavity_s`` (the current configuration's device response) may be supplied by the
        batched direct path; otherwise it is computed here. Both give the same numbers.
        """
        f = state.frequencies()
        t0, duration = self.clock.now(), state.sweep_time_s()
        if cavity_s is None:
            cavity_s = self._device(f, self.bits, t0)
        settled_at = self.bits_latched_at + self.settle_time_s
        if t0 + duration > settled_at and t0 < settled_at:
            per_point = (duration / (2 if state.reverse_needed() else 1)) / len(f)
            early = t0 + per_point * np.arange(len(f)) < settled_at
            old = self._device(f, self.previous_bits, t0)
            cavity_s = np.where(early[:, None, None], old, cavity_s)
        elif t0 + duration <= settled_at:
            cavity_s = self._device(f, self.previous_bits, t0)
        raw = self._raw(f, self._embedded(f, cavity_s))
        raw = (raw if state.rf_on else np.zeros_like(raw)) + self._noise(state, len(f))
        if not self.clock.realtime:
            self.clock.sleep(duration)
        return raw, duration

    def _measure(self, state: VNAState) -> tuple[np.ndarray, float]:
        with self.lock:
            return self._sweep(state)

    # -- the direct path ------------------------------------------------------------------
    def measure_configs(self, bits: np.ndarray, settle_s: float = 0.0) -> np.ndarray:
        """|S21| ``[B, points]`` for configurations ``[B, n_bits]``, without any transport.

        Same physics, timing and noise stream as the full path (``SET`` over serial, wait
        ``settle_s`` on the world's clock, trigger a sweep on the VNA's current settings), so
        the same seed gives the same numbers. Raw data: the hidden error boxes are included,
        as on an uncalibrated VNA; use :meth:`sweep_configs` to apply a calibration.
        """
        return np.abs(self.sweep_configs(bits, settle_s)[:, :, 1, 0])

    def sweep_configs(self, bits: np.ndarray, settle_s: float = 0.0) -> np.ndarray:
        """Raw complex S ``[B, points, 2, 2]``, as :meth:`measure_configs` measures them."""
        bits = np.atleast_2d(np.asarray(bits)).astype(bool)
        if bits.shape[1] != self.n_bits:
            raise ValueError(f"configurations must have {self.n_bits} bits, got {bits.shape[1]}")
        with self.lock:
            state = self.vna.state
            f = state.frequencies()
            batch = None
            if not self.drift_per_s and self.connection[0] == "device":
                batch = self.cavity.s_params(bits, f)
            out = np.empty((len(bits), len(f), 2, 2), dtype=complex)
            for k, config in enumerate(bits):
                self.set_configuration(config)
                self.clock.sleep(settle_s)
                out[k], _ = self._sweep(state, None if batch is None else batch[k])
            self.vna.data, self.vna.data_f = out[-1], f
            self.vna.sweeps += len(bits)
            if self.metasurface is not None:
                self.metasurface.bits = self.bits.copy()
            return out

    # -- truth, faults, state ------------------------------------------------------------
    def ground_truth(self) -> dict[str, Any]:
        """The device's true S-parameters, without error boxes or noise.

        For the metasurface's current configuration, on the mock VNA's current frequency
        grid, at the current time (drift). Keys: ``frequency_hz`` [F]; ``s`` [F, 2, 2];
        ``s11``, ``s21``, ``s12``, ``s22`` [F]; ``gamma_in_port1`` / ``gamma_in_port2`` [F]:
        the input reflection at one port while the other port stays connected to the VNA
        (what a one-port calibration measures, since the other port's match is not
        corrected); ``configuration`` [n_bits] bool. All numpy arrays.
        :meth:`true_network` gives ``s`` as an ``skrf.Network``.
        """
        with self.lock:
            f = self.vna.state.frequencies()
            s = self._device(f, self.bits, self.clock.now())
            loads = [
                b.s(f)[:, 1, 1] if self.error_boxes_on else np.zeros(len(f), complex)
                for b in self.error_boxes
            ]
            s11, s12, s21, s22 = s[:, 0, 0], s[:, 0, 1], s[:, 1, 0], s[:, 1, 1]
            return {
                "frequency_hz": f,
                "s": s,
                "s11": s11,
                "s21": s21,
                "s12": s12,
                "s22": s22,
                "gamma_in_port1": s11 + s12 * s21 * loads[1] / (1 - s22 * loads[1]),
                "gamma_in_port2": s22 + s12 * s21 * loads[0] / (1 - s11 * loads[0]),
                "configuration": self.bits.copy(),
            }

    def true_network(self):
        """The device's true S-parameters as an ``skrf.Network`` (Hz axis)."""
        import skrf

        truth = self.ground_truth()
        freq = skrf.Frequency.from_f(truth["frequency_hz"], unit="Hz")
        return skrf.Network(frequency=freq, s=truth["s"], name="cavity (true)")

    def inject_fault(self, name: str) -> None:
        """Switch a fault on now: vna_hang, vna_drop, vna_garbage, vna_truncate,
        metasurface_vanish, metasurface_hang."""
        device, _, fault = name.partition("_")
        if device == "vna":
            self.vna.inject(fault)
        elif name == "metasurface_vanish" and self.metasurface is not None:
            self.metasurface.vanish()
        elif name == "metasurface_hang" and self.metasurface is not None:
            self.metasurface.hang = True
        else:
            raise ValueError(f"unknown fault '{name}'")

    def _schedule_faults(self, faults: Mapping[str, Any]) -> None:
        for key, count in faults.items():
            if key not in FAULT_KEYS:
                raise ConfigError(
                    f"bench.simulation.faults: unknown fault '{key}' "
                    f"(known: {', '.join(FAULT_KEYS)})"
                )
            if count is None or count is False:
                continue
            device, fault = FAULT_KEYS[key]
            if device == "vna":
                self.vna.inject(fault, after_sweeps=int(count))
            elif self.metasurface is not None:
                self.metasurface.vanish_after_sets = int(count)

    def elapse(self, seconds: float) -> None:
        """Let ``seconds`` pass with the bench idle (the thermal drift follows the clock)."""
        if isinstance(self.clock, VirtualClock):  # real-time: sweeps are timed from the wall clock
            with self.lock:
                let_time_pass(self.clock, 0.0, seconds)

    def state_dict(self) -> dict[str, Any]:
        """Clock, configuration, connection, noise generator and VNA settings (no pickle)."""
        with self.lock:
            return {
                "clock_s": float(self.clock.now()) if not self.clock.realtime else 0.0,
                "bits": self.bits.astype(np.uint8),
                "previous_bits": self.previous_bits.astype(np.uint8),
                "bits_latched_at": float(self.bits_latched_at),
                "rng_state": json.dumps(self.rng.bit_generator.state),
                "vna_state": json.dumps(self.vna.state.to_json()),
                "connection": json.dumps([self.connection[0], list(self.connection[1])]),
                "sweeps": int(self.vna.sweeps),
            }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        with self.lock:
            if isinstance(self.clock, VirtualClock):
                self.clock.t = float(state["clock_s"])
            self.bits = np.asarray(state["bits"]).astype(bool)
            self.previous_bits = np.asarray(state["previous_bits"]).astype(bool)
            self.bits_latched_at = float(state["bits_latched_at"])
            self.rng.bit_generator.state = json.loads(_text(state["rng_state"]))
            self.vna.state = VNAState.from_json(json.loads(_text(state["vna_state"])))
            kind, ports = json.loads(_text(state["connection"]))
            self.connection = (kind, tuple(ports))
            self.vna.sweeps = int(state["sweeps"])
            if self.metasurface is not None:
                self.metasurface.bits = self.bits.copy()

    def close(self) -> None:
        """Stop the VNA server and the pty thread (the standalone server outlives runs)."""
        if self.metasurface is not None:
            self.metasurface.close()
        self.vna_server.close()


def _noise_floor(spec: Any) -> float:
    if isinstance(spec, Mapping):
        spec = spec.get("floor", 1e-4)
    try:
        value = float(spec or 0.0)
    except (TypeError, ValueError):
        raise ConfigError(
            f"bench.simulation.noise must be a number or {{floor: x}}, got {spec!r}"
        ) from None
    if value < 0:
        raise ConfigError(f"bench.simulation.noise must be >= 0, got {value:g}")
    return value


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


__all__ = ["FAULT_KEYS", "METASURFACE_IDN", "MicrowaveWorld"]
