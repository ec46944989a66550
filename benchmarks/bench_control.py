"""Control procedures: digital time per outer iteration against hardware time, and studies.

Default (``python benchmarks/bench_control.py``, what ``run_all.py`` calls) prints one JSON
document, ``timing``: a ``control-actor`` run on ``optical-control-sim`` (100 Hz SLM, 5 ms
settling, pipelined acquisition), read back from its ``/timing`` rows. Per round it reports
the digital seconds (fitting the model network and training the actor, wall clock on this
machine) and the hardware seconds (the bench clock: what the real SLM and camera would take
at 100 frames/s), and the fraction of the round a real bench would spend waiting on the
hardware, ``hardware / (hardware + digital)``. A short ``real-time`` acquisition checks that
the simulated bench really delivers 100 frames/s through the drivers.

Studies (minutes each; results go to ``benchmarks/out/control_<name>.json``):

* ``efficiency``: fidelity against hardware queries for control-actor and control-vae, with
  round-0 probes of 2048, 4096 and 6144 patterns (``PROBES=2048,4096`` to choose);
* ``drift``: the TM drifts (``drift_per_s``); control-tm projects the same patterns every
  ``interval_s`` from a TM calibrated before the drift, while control-actor keeps measuring
  (its patterns plus 1000 fresh random probes per round) and refitting on a memory window
  of the 6144 newest pairs. Both report fidelity against bench time; the same online
  control-actor without drift is the reference.

Threads: training uses ``THREADS`` (default 2) torch threads; BLAS outside torch is kept to
one thread, as in the tests.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "out"
STATION = "optical-control-sim"
THREADS = int(os.environ.get("THREADS", "2"))


def _environment(workdir: Path) -> None:
    os.environ.setdefault("LABPNN_DATA_DIR", str(workdir / "data"))
    os.environ.setdefault("LABPNN_STATE_DIR", str(workdir / "state"))


def run(procedure: str, params: dict, station_set: list[str] | None = None) -> Path:
    """One run through the real runner, in this process; returns the run file."""
    from labpnn.runner import RunRequest, execute

    request = RunRequest(
        procedure=procedure,
        station=STATION,
        params={k: str(v) for k, v in params.items()},
        station_set=list(station_set or []),
        show_progress=False,
    )
    outcome = execute(request, echo=lambda _text: None)
    if outcome.status != "completed":
        raise RuntimeError(f"{procedure} ended {outcome.status}: {outcome.error}")
    return Path(outcome.path)


def columns(path: Path, group: str = "results") -> dict[str, list[float]]:
    import h5py

    with h5py.File(path, "r") as f:
        if group not in f:
            return {}
        return {k: [float(v) for v in f[group][k][()]] for k in f[group]}


def timing() -> dict:
    params = {"n_iterations": 2, "threads": THREADS}
    start = time.perf_counter()
    path = run("control-actor", params)
    wall = time.perf_counter() - start
    rounds = columns(path, "timing")
    results = columns(path)
    digital, hardware = np.array(rounds["digital_s"]), np.array(rounds["hardware_s"])
    cpu = np.array(rounds["digital_cpu_s"])
    fraction = hardware / (hardware + digital)
    later = slice(1, None)  # round 0 includes the first, longer fits
    return {
        "station": STATION,
        "threads": THREADS,
        "slm_rate_hz": 100,
        "rounds": len(digital),
        "digital_s_per_round": [round(x, 2) for x in digital],
        "digital_cpu_s_per_round": [round(x, 2) for x in cpu],
        "hardware_s_per_round": [round(x, 2) for x in hardware],
        "hardware_fraction_per_round": [round(x, 3) for x in fraction],
        "hardware_fraction_later_rounds": round(
            float(hardware[later].sum() / (hardware[later] + digital[later]).sum()), 3
        ),
        "hardware_fraction_whole_run": round(
            float(hardware.sum() / (hardware.sum() + digital.sum())), 3
        ),
        # On a shared machine wall time overstates the work; CPU time / threads is the
        # digital time a dedicated machine with this many cores would need at best.
        "hardware_fraction_later_rounds_dedicated": round(
            float(hardware[later].sum() / (hardware[later] + cpu[later] / THREADS).sum()), 3
        ),
        "final_fidelity": round(results["fidelity"][-1], 4),
        "queries": int(results["queries"][-1]),
        "run_wall_s": round(wall, 1),
        "realtime_frames_per_s": realtime_rate(),
    }


def realtime_rate(n: int = 200) -> float:
    """Frames/s of pipelined acquisition on the real-time clock, through the drivers."""
    from labpnn.bench import make_bench
    from labpnn.station import load_station

    overrides = ["bench.simulation.clock=real-time", "bench.simulation.transport=full"]
    with load_station(STATION, overrides).connect() as station:
        bench = make_bench(station, detect="intensity")
        phases = np.random.default_rng(0).uniform(0, 2 * np.pi, (n, *bench.macropixels))
        bench.acquire(phases[:5])
        start = time.perf_counter()
        bench.acquire(phases)
        return round(n / (time.perf_counter() - start), 1)


def efficiency(probe_counts: tuple[int, ...] = (2048, 4096, 6144)) -> dict:
    if os.environ.get("PROBES"):
        probe_counts = tuple(int(p) for p in os.environ["PROBES"].split(","))
    curves = {}
    for procedure in ("control-actor", "control-vae"):
        for probes in probe_counts:
            path = run(procedure, {"n_probes": probes, "n_iterations": 3, "threads": THREADS})
            cols = columns(path)
            curves[f"{procedure} probes={probes}"] = {
                "queries": cols["queries"],
                "fidelity": [round(x, 4) for x in cols["fidelity"]],
                "fidelity_std": [round(x, 4) for x in cols["fidelity_std"]],
                "file": str(path),
            }
            print(procedure, probes, curves[f"{procedure} probes={probes}"], flush=True)
    return curves


def drift(rate: float = 0.002, interval_s: float = 12.0, rounds: int = 6) -> dict:
    drifting = [f"bench.simulation.drift_per_s={rate}"]
    run("calibrate-tm", {"n_modes": 1024})  # before the drift: the TM is right at t = 0
    tm = columns(run("control-tm", {"n_iterations": rounds + 1, "interval_s": interval_s},
                     drifting))  # fmt: skip
    online = {"n_iterations": rounds, "memory": 6144, "probes_per_iteration": 1000,
              "threads": THREADS}  # fmt: skip
    actor = columns(run("control-actor", online, drifting))
    still = columns(run("control-actor", online))
    keep = ("time_s", "queries", "fidelity", "fidelity_std", "noiseless_fidelity")
    return {
        "drift_per_s": rate,
        "control-tm (stale TM)": {k: tm[k] for k in keep if k in tm},
        "control-actor (online)": {k: actor[k] for k in keep if k in actor},
        "control-actor (no drift)": {k: still[k] for k in keep if k in still},
    }


def main(argv: list[str]) -> None:
    sys.path.insert(0, str(REPO))
    which = argv[0] if argv else "timing"
    with tempfile.TemporaryDirectory() as tmp:
        _environment(Path(tmp))
        result = {"timing": timing, "efficiency": efficiency, "drift": drift}[which]()
    text = json.dumps(result, indent=2)
    if which != "timing":
        OUT.mkdir(exist_ok=True)
        (OUT / f"control_{which}.json").write_text(text)
    print(text)


if __name__ == "__main__":
    main(sys.argv[1:])
