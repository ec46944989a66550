"""A station: the YAML description of a bench, turned into instruments by role.

The config says which driver plays which role, where it is, the lab's safety limits,
and whether it is simulated. Switching a bench between hardware and simulation is a
change here and nowhere else: for a simulated instrument the station asks the bench's
simulated world (``labpnn.mock_instruments``) for the transport to hand to the *same*
driver class. This module is the only non-test code that imports the mocks.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from labpnn import paths
from labpnn.errors import (
    BenchBusy,
    ConfigError,
    DeviceLost,
    LabpnnError,
    LimitError,
    RunAborted,
    did_you_mean,
)

RESERVED_KEYS = {"driver", "simulated", "limits", "settings", "expect"}
# bench.simulation keys that say how a world is run, not which world it is (persistence key)
# How a world is reached, clocked or disturbed, not what it is: a calibration, and a persisted
# world, stay the same across these (a fault drill still finds the station's TM).
NOT_THE_WORLD = {"persist", "clock", "transport", "slm_display", "faults"}
# what a safe_state() raises when the session dropped but the instrument may still be there
RECONNECT_ON = (DeviceLost, OSError)


class SimulatedWorld(Protocol):
    """What the station needs from a simulated bench (see ``mock_instruments``)."""

    def driver_kwargs(self, role: str, config: Mapping[str, Any]) -> dict[str, Any]: ...
    def wire(self, role: str, driver: Any) -> None: ...
    def ground_truth(self) -> dict[str, Any]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...
    def elapse(self, seconds: float) -> None: ...  # idle time between runs (persist)
    def close(self) -> None: ...


@dataclass
class InstrumentConfig:
    role: str
    driver: str
    simulated: bool
    options: dict[str, Any]
    limits: dict[str, list[float]]
    settings: dict[str, Any]
    expect: dict[str, str]

    def driver_class(self) -> type:
        return resolve_driver(self.driver, self.role)

    @property
    def lock_key(self) -> str:
        """Two station files naming the same physical device share one lock."""
        where = (
            self.options.get("address") or self.options.get("serial") or self.options.get("device")
        )
        return _safe(f"{self.driver}-{where}") if (where and not self.simulated) else ""


@dataclass
class BenchConfig:
    kind: str
    layout: dict[str, Any] = field(default_factory=dict)
    simulation: dict[str, Any] = field(default_factory=dict)

    def layout_hash(self) -> str:
        blob = json.dumps(self.layout, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def world_settings(self) -> dict[str, Any]:
        """The simulated world's own settings (seed, medium, noise, drift), without how it is
        reached or clocked; empty for a real bench."""
        return {k: v for k, v in self.simulation.items() if k not in NOT_THE_WORLD}


def _simulated_flag(station: str, role: str, value: Any) -> bool:
    """``simulated:`` read as a switch: ``bool("no")`` is True, and a real bench must never
    be mistaken for a simulated one (or the other way round)."""
    from labpnn.settings import as_bool

    try:
        return as_bool(value)
    except ValueError:
        raise ConfigError(
            f"station '{station}': instrument '{role}': simulated={value!r} is not a switch; "
            "write simulated: true or simulated: false"
        ) from None


def _failed(exc: BaseException) -> str:
    return f"failed: {type(exc).__name__}: {exc}"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


# What a station file may hold; anything else is a typo that would silently do nothing.
STATION_KEYS = {"name", "instruments", "bench", "calibration", "description"}
BENCH_KEYS = {"kind", "layout", "simulation"}
# driver options annotated as plain numbers: a string there is a typo, not a value
NUMBER_ANNOTATIONS = {"float", "int", "float|None", "int|None"}


def _refuse_unknown_keys(where: str, mapping: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(map(str, mapping)) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}{did_you_mean(unknown, known)}; "
            f"known: {', '.join(sorted(known))}"
        )


def _check_options(inst: InstrumentConfig, cls_: type) -> None:
    """Option names and number types from the driver's signature, before connecting."""
    import numbers

    from labpnn.settings import declared_options, refuse_unknown_options

    params = declared_options(cls_)
    if params is None:
        return  # a driver without a signature we can read (an SDK class)
    unknown = {k: v for k, v in inst.options.items() if k not in params}
    refuse_unknown_options(inst.role, cls_, unknown)
    for key, value in inst.options.items():
        annotation = params[key].annotation
        if isinstance(annotation, type):
            annotation = annotation.__name__
        numeric = str(annotation).replace(" ", "") in NUMBER_ANNOTATIONS
        timeout = key == "timeout" or key.endswith("timeout_s")
        if value is None or not (numeric or timeout):
            continue
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise ConfigError(f"{inst.role}: option {key}={value!r} must be a number")
        if timeout and not value > 0:
            raise ConfigError(f"{inst.role}: option {key}={value!r} must be more than 0 s")


def resolve_driver(path: str, role: str = "?") -> type:
    module_name, _, cls_name = str(path).rpartition(".")
    if not module_name:
        raise ConfigError(f"instrument '{role}': driver '{path}' must be a dotted class path")
    try:
        module = importlib.import_module(module_name)
        found = getattr(module, cls_name)
        if not isinstance(found, type):
            raise ConfigError(
                f"instrument '{role}': driver '{path}' is a {type(found).__name__}, not a class"
            )
        return found
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigError(f"instrument '{role}': unknown driver class '{path}'") from None
        raise
    except AttributeError:
        raise ConfigError(f"instrument '{role}': unknown driver class '{path}'") from None


def _load_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read station file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path.name}: malformed YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path.name}: a station file must be a mapping with 'instruments'")
    return data


def _parse_scalar(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_override(config: dict[str, Any], assignment: str) -> None:
    """Apply one ``dotted.key=value`` override (``--station-set``) in place."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key:
        raise ConfigError(f"--station-set expects dotted.key=value, got '{assignment}'")
    parts = key.split(".")
    node = config
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"--station-set {key}: '{part}' is not a section")
        node = child
    node[parts[-1]] = _parse_scalar(raw)


def _refuse_widened_limits(original: Any, changed: Any, path: Path) -> None:
    """A ``--station-set`` may tighten a lab limit, never widen or drop one.

    The limits are the lab's safety rules, written into the station file on purpose; a
    command line (or a schedule made from one) must not loosen them unnoticed.
    """

    def limits(raw: Any) -> dict[tuple[str, str], Any]:
        out = {}
        instruments = raw.get("instruments") if isinstance(raw, dict) else None
        for role, spec in (instruments if isinstance(instruments, dict) else {}).items():
            section = spec.get("limits") if isinstance(spec, dict) else None
            for key, value in (section if isinstance(section, dict) else {}).items():
                out[(str(role), str(key))] = value
        return out

    def bounds(value: Any) -> tuple[float, float] | None:
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            return None
        try:
            low, high = (float("-inf") if v is None else float(v) for v in value)
        except (TypeError, ValueError):
            return None
        return low, high

    now = limits(changed)
    for (role, key), before in limits(original).items():
        was = bounds(before)
        if was is None:
            continue  # a malformed limit is refused with its own message
        after = now.get((role, key))
        new = bounds(after)
        if new is None or new[0] < was[0] or new[1] > was[1]:
            raise ConfigError(
                f"--station-set would widen or remove the lab limit instruments.{role}.limits."
                f"{key} ({before} in {path.name} -> {after}); a command line may only tighten "
                f"a lab limit. Change it in the station file if the lab agrees"
            )


def find_station_file(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise ConfigError(f"station file {path} does not exist")
        return path
    bundled = paths.bundled_stations()
    if str(name_or_path) in bundled:
        return bundled[str(name_or_path)]
    raise ConfigError(
        f"unknown station '{name_or_path}'{did_you_mean([str(name_or_path)], bundled)}: not a "
        f"file, and not a bundled station ({', '.join(bundled)})"
    )


class StationConfig:
    """A validated station description; builds nothing until :meth:`connect`."""

    def __init__(self, raw: dict[str, Any], name: str, source: Path | None = None):
        self.raw = raw
        self.name = str(raw.get("name") or name)
        # a simulated station stays simulated without its instruments (without_instruments)
        self._simulated_bench = False
        self.source = source
        _refuse_unknown_keys(f"station '{self.name}'", raw, STATION_KEYS)
        instruments = raw.get("instruments")
        if not isinstance(instruments, dict) or not instruments:
            raise ConfigError(f"station '{self.name}': 'instruments' must map roles to drivers")
        self.instruments: dict[str, InstrumentConfig] = {}
        for role, spec in instruments.items():
            if not isinstance(spec, dict) or "driver" not in spec:
                raise ConfigError(f"station '{self.name}': instrument '{role}' needs a 'driver'")
            for key in ("limits", "settings", "expect"):
                if not isinstance(spec.get(key) or {}, dict):
                    raise ConfigError(
                        f"station '{self.name}': instrument '{role}': '{key}' must be a mapping "
                        f"(name: value, ...), got {type(spec[key]).__name__} {spec[key]!r}"
                    )
            limits = spec.get("limits") or {}
            self.instruments[role] = InstrumentConfig(
                role=str(role),
                driver=str(spec["driver"]),
                simulated=_simulated_flag(self.name, str(role), spec.get("simulated", False)),
                options={k: v for k, v in spec.items() if k not in RESERVED_KEYS},
                limits=limits,
                settings=dict(spec.get("settings") or {}),
                expect={k: str(v) for k, v in (spec.get("expect") or {}).items()},
            )
        bench = raw.get("bench") or {}
        if not isinstance(bench, dict) or "kind" not in bench:
            raise ConfigError(f"station '{self.name}': 'bench' needs a 'kind'")
        _refuse_unknown_keys(f"station '{self.name}': bench", bench, BENCH_KEYS)
        self.bench = BenchConfig(
            kind=str(bench["kind"]),
            layout=dict(bench.get("layout") or {}),
            simulation=dict(bench.get("simulation") or {}),
        )

    @classmethod
    def load(cls, name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = ()):
        path = find_station_file(name_or_path)
        raw = _load_yaml(path)
        original, raw = raw, copy.deepcopy(raw)
        for assignment in overrides:
            apply_override(raw, assignment)
        if overrides:
            _refuse_widened_limits(original, raw, path)
        return cls(raw, name=path.name.removesuffix(".yaml").removesuffix(".yml"), source=path)

    @property
    def simulated(self) -> bool:
        return self._simulated_bench or any(i.simulated for i in self.instruments.values())

    def without_instruments(self) -> StationConfig:
        """This station with no instruments: what a run that measures nothing connects."""
        bare = copy.copy(self)
        bare._simulated_bench = self.simulated  # its file and calibrations say so still
        bare.instruments = {}
        return bare

    def calibration_hash(self) -> str:
        """The registry key's hash: what a calibration of this station is valid for.

        A real station's is its layout's, so existing registry entries stay valid. A simulated
        station's is marked as simulated and includes its world's settings: a calibration of
        a simulated world never satisfies a real bench of the same name and layout (even when
        ``bench.simulation`` is empty), and a TM of the world of seed 3 never focuses the
        world of seed 1.
        """
        if not self.simulated:
            return self.bench.layout_hash()  # bench.simulation means nothing to real hardware
        world = self.bench.world_settings()
        blob = json.dumps(
            {"simulated": True, "layout": self.bench.layout, "world": world},
            sort_keys=True,
            default=str,
        ).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def seed(self) -> int | None:
        return self.bench.simulation.get("seed") if self.simulated else None

    def check(self, unavailable: list[str] | None = None) -> list[str]:
        """Resolve every driver and validate its limits; return human-readable notes.

        Raises :class:`ConfigError` for a bad config and ``MissingDependency`` (or the
        driver's own error) for real hardware that is not there: an SDK not installed, no
        display for the SLM, no camera with that serial. With an ``unavailable`` list, those
        are appended to it instead, one line per instrument, so ``labpnn station check``
        reports every missing piece of a real bench at once.
        """
        notes = []
        for inst in self.instruments.values():
            cls_ = inst.driver_class()
            _check_options(inst, cls_)
            probe = self.settings_probe(inst.role)
            if probe is not None:
                for key, value in inst.settings.items():
                    probe.check(key, value)
                # A bench sets some of them from its layout (bench.layout.vna: the sweep):
                # out of range or past a lab limit is bad input before anything starts.
                from_layout = self.bench.layout.get(inst.role)
                if isinstance(from_layout, dict):
                    known = {x.name for x in cls_.SETTINGS}
                    for key, value in from_layout.items():
                        if key in known:
                            try:
                                probe.check(key, value)
                            except LimitError as exc:
                                raise ConfigError(
                                    f"bench.layout.{inst.role}.{key}: {exc}"
                                ) from None
            if not inst.simulated and hasattr(cls_, "check_available"):
                try:
                    cls_.check_available(inst.options)
                except LabpnnError as exc:
                    if unavailable is None:
                        raise
                    unavailable.append(f"{inst.role}: {exc}")
                    continue
            kind = "simulated" if inst.simulated else "real"
            notes.append(f"{inst.role}: {inst.driver} ({kind})")
        if self.simulated:
            from labpnn.mock_instruments import world_class

            world_class(self.bench.kind)
        return notes

    def settings_probe(self, role: str) -> Any:
        """The role's driver, not connected, with this station's lab limits (None if it
        declares no settings): ``probe.check(name, value)`` applies the driver's capability
        range and the lab limit exactly as its setter will, without touching the instrument.
        """
        from labpnn.settings import InstrumentSettings

        inst = self.instruments[role]
        cls_ = inst.driver_class()
        if not issubclass(cls_, InstrumentSettings):
            return None
        probe = cls_.__new__(cls_)
        probe._init_settings(inst.role, inst.limits)
        return probe

    def connect(self) -> Station:
        station = Station(self)
        station.connect()
        return station


class Station:
    """Instruments by role, with locks, snapshot, safe state and (if simulated) a world."""

    def __init__(self, config: StationConfig):
        self.config = config
        self.name = config.name
        self.bench = config.bench
        self.instruments: dict[str, Any] = {}
        self.world: SimulatedWorld | None = None
        self._world_store: Any = None
        self._qc_components: list[Any] = []
        self.unreachable: dict[str, str] = {}  # role -> why, after connect(best_effort=True)
        self.reopened: dict[str, str] = {}  # role -> why its last safe_state() had to reconnect

    # -- construction -------------------------------------------------------------
    def connect(self, best_effort: bool = False) -> None:
        """Open every instrument and apply the station's settings.

        ``best_effort`` is for ``labpnn safe-off``: an instrument that cannot be opened is
        recorded in ``unreachable`` and the others are still opened (without the station's
        settings, which could be what made them unsafe), so one unplugged controller does not
        leave the VNA's RF on.
        """
        cfg = self.config
        if cfg.simulated and cfg.instruments:  # a run that measures nothing builds no world
            from labpnn.mock_instruments import build_world

            simulation = dict(cfg.bench.simulation)
            persist = simulation.pop("persist", False)
            if not isinstance(persist, bool):
                raise ConfigError(
                    f"bench.simulation.persist must be true or false, got {persist!r}"
                )
            bench = BenchConfig(cfg.bench.kind, cfg.bench.layout, simulation)
            try:
                self.world = build_world(bench, cfg.instruments)
            except (ValueError, TypeError, KeyError) as exc:
                # numpy's or a simulator's own words; say where the value came from
                raise ConfigError(
                    f"station '{self.name}': the simulated {bench.kind} world rejects a value "
                    f"under bench.simulation or bench.layout ({type(exc).__name__}: {exc})"
                ) from exc
            if persist:
                self._restore_world()
        try:
            for role, inst in cfg.instruments.items():
                try:
                    driver = self._open(role, inst)
                except Exception as exc:
                    if not best_effort:
                        raise
                    self.unreachable[role] = f"{type(exc).__name__}: {exc}"
                    continue
                self.instruments[role] = driver
                if inst.simulated:
                    self.world.wire(role, driver)
                if best_effort:
                    continue
                for key, value in inst.settings.items():
                    setattr(driver, key, value)
        except BaseException:
            self.close()
            raise

    def _open(self, role: str, inst: InstrumentConfig) -> Any:
        """A fresh driver for one instrument, without the station's settings."""
        cls_ = inst.driver_class()
        kwargs = dict(inst.options)
        if inst.simulated:
            kwargs.update(self.world.driver_kwargs(role, inst.options))
        return cls_(label=role, limits=inst.limits, **kwargs)

    def _restore_world(self) -> None:
        """``bench.simulation.persist``: continue the world the last run left, drifted by the
        idle time since (``mock_instruments.persistence``)."""
        from labpnn.mock_instruments.persistence import WorldStore

        # Keyed by the world's own settings too, so another seed, medium or drift rate gets
        # its own world and never ends the night-to-night series of this one.
        world = self.bench.world_settings()
        digest = hashlib.sha256(json.dumps(world, sort_keys=True, default=str).encode())
        name = f"{_safe(self.name)}-{self.bench.layout_hash()}-{digest.hexdigest()[:12]}.npz"
        self._world_store = WorldStore(paths.state_dir() / "worlds" / name)
        logging.getLogger(__name__).info(self._world_store.restore(self.world))

    def __getitem__(self, role: str) -> Any:
        try:
            return self.instruments[role]
        except KeyError:
            raise ConfigError(
                f"station '{self.name}' has no '{role}' instrument "
                f"(it has: {', '.join(self.instruments)})"
            ) from None

    def __contains__(self, role: str) -> bool:
        return role in self.instruments

    @property
    def simulated(self) -> bool:
        return self.config.simulated

    @property
    def clock(self) -> Any:
        """The world's clock when simulated (virtual in ``fast`` mode), else wall time."""
        from labpnn.clock import WALL_CLOCK

        return getattr(self.world, "clock", None) or WALL_CLOCK

    @property
    def ground_truth(self) -> dict[str, Any] | None:
        """The simulator's truth (e.g. the true TM), or None on real hardware."""
        if self.world is None:
            return None
        return self.world.ground_truth()

    # -- locks --------------------------------------------------------------------
    def lock_paths(self) -> dict[str, Path]:
        folder = paths.state_dir() / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        return {
            role: folder / f"{inst.lock_key or _safe(self.name + '.' + role)}.lock"
            for role, inst in self.config.instruments.items()
        }

    @contextlib.contextmanager
    def locked(self, timeout_s: float = 0.0) -> Iterator[None]:
        """Hold every instrument's file lock; the OS frees them if the process dies."""
        with hold_locks(self.lock_paths(), timeout_s, self.name):
            yield

    # -- state ----------------------------------------------------------------------
    def identities(self) -> dict[str, dict[str, str]]:
        return {role: dict(drv.identity()) for role, drv in self.instruments.items()}

    def check_identities(self) -> dict[str, dict[str, str]]:
        """Compare each instrument's reported identity with the config's ``expect``."""
        found = self.identities()
        for role, inst in self.config.instruments.items():
            for key, want in inst.expect.items():
                got = str(found.get(role, {}).get(key, ""))
                if got != want:
                    raise ConfigError(
                        f"{role}: the connected instrument reports {key}='{got}', but the "
                        f"station config expects '{want}' (wrong device or wrong address?)"
                    )
        return found

    def snapshot(self) -> dict[str, Any]:
        """Every instrument's settings, with units and limits, as qcodes JSON."""
        from labpnn.snapshot import build_snapshot

        return build_snapshot(self)

    def safe_state(self) -> dict[str, str]:
        """Make every instrument safe; never raises. Returns role -> 'ok' or the error.

        A dropped connection (``DeviceLost``) does not mean the instrument is gone: a VNA
        whose TCP session died is usually still on the network with its RF on. Such an
        instrument is closed, opened afresh without the station's settings (as for
        ``labpnn safe-off``), and its safe state tried once more; ``reopened`` records why,
        and a warning says so in the run's log.
        """
        result = {}
        self.reopened = {}
        for role, driver in list(self.instruments.items()):
            try:
                driver.safe_state()
                result[role] = "ok"
            except RECONNECT_ON as exc:
                result[role] = self._safe_state_reopened(role, driver, exc)
            except Exception as exc:  # keep going: the others must still be made safe
                result[role] = _failed(exc)
        return result

    def _safe_state_reopened(self, role: str, driver: Any, first: BaseException) -> str:
        """Second try of one instrument's safe state, on a fresh connection."""
        log = logging.getLogger("labpnn.station")
        with contextlib.suppress(Exception):
            driver.close()
        inst = self.config.instruments.get(role)
        try:
            if inst is None:
                raise ConfigError(f"'{role}' is not in the station config")
            fresh = self._open(role, inst)
        except Exception as exc:
            self.instruments.pop(role, None)
            return f"{_failed(first)}; reopening it failed too: {type(exc).__name__}: {exc}"
        self.instruments[role] = fresh
        try:
            if inst.simulated:
                self.world.wire(role, fresh)
            fresh.safe_state()
        except Exception as exc:
            return f"{_failed(first)}; after reopening: {type(exc).__name__}: {exc}"
        why = f"{type(first).__name__}: {first}"
        self.reopened[role] = why
        log.warning(
            "%s: safe state failed on the old connection (%s); reopened it: safe", role, why
        )
        return "ok"

    def close(self) -> None:
        for driver in list(self.instruments.values()):
            with contextlib.suppress(Exception):
                driver.close()
        self.instruments.clear()
        if self.world is not None:
            if self._world_store is not None:
                try:
                    self._world_store.save(self.world)
                except Exception as exc:  # the run's data matter more than the world's state
                    logging.getLogger(__name__).warning(
                        "could not save the simulated world's state: %s", exc
                    )
            with contextlib.suppress(Exception):
                self.world.close()
            self.world = None

    def __enter__(self) -> Station:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def hold_locks(
    lock_paths: Mapping[str, Path],
    timeout_s: float,
    what: str,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[None]:
    """Hold every lock, waiting up to ``timeout_s`` for a busy bench.

    ``should_stop``: polled while waiting, so Ctrl-C during a long wait stops at once
    (:class:`RunAborted`) instead of taking the bench when it frees up.
    """
    from filelock import FileLock, Timeout

    deadline = time.monotonic() + max(timeout_s, 0.0)
    held = []
    said = False
    try:
        for role, path in lock_paths.items():
            lock = FileLock(str(path))
            while True:
                remaining = deadline - time.monotonic()
                try:
                    lock.acquire(timeout=max(0.0, min(remaining, 0.25)))
                    break
                except Timeout:
                    if not said and remaining > 0.25:
                        said = True  # why nothing happens yet, once
                        logging.getLogger("labpnn").warning(
                            "bench busy: waiting up to %.0f s for '%s' of station '%s' (held "
                            "by another run or the GUI); Ctrl-C stops waiting",
                            remaining, role, what,
                        )  # fmt: skip
                    if should_stop is not None and should_stop():
                        raise RunAborted(
                            "stopped while waiting for the bench; nothing was started"
                        ) from None
                    if remaining <= 0.25:
                        raise BenchBusy(
                            f"bench busy: '{role}' of station '{what}' is locked by another "
                            f"run or the GUI ({path})"
                        ) from None
            held.append(lock)
        yield
    finally:
        for lock in reversed(held):
            with contextlib.suppress(Exception):
                lock.release()


def load_station(name_or_path: str | Path, overrides=()) -> StationConfig:
    return StationConfig.load(name_or_path, overrides)


__all__ = [
    "BenchConfig",
    "InstrumentConfig",
    "LabpnnError",
    "Station",
    "StationConfig",
    "load_station",
]
