"""How fast the simulated optical bench runs, and how close to the hardware limit it gets.

Prints one JSON document:

* ``direct_vs_raw``: frames/s of ``OpticalBench.measure`` on the batched ``direct`` path
  against the bare TM maths on the same shapes (numpy ``exp(iφ) @ T``, ``|.|²``, pooling).
  Target: ratio >= 0.8. Reported with the bundled noise, with ``noise: off``, and for a
  larger layout, because shot/read noise is a fixed per-pixel cost the bare maths skips.
* ``full_path_overhead``: extra milliseconds per frame of the ``full`` path (SLM driver ->
  present hook, camera driver -> harvesters-shaped back-end -> world) over the direct path,
  batched and frame by frame. Target: <= 1 ms/frame.
* ``hardware_bound``: on the ``real-time`` clock (really waits) with a 60 Hz SLM, 10 ms
  settling and 2 ms exposure, the pipelined loop's frames/s over the 60 frames/s the
  timing allows. Target: >= 0.9. A naive show-settle-grab loop is shown for comparison.

Run: ``.venv/bin/python benchmarks/bench_optical_sim.py`` (about a minute). BLAS runs
single-threaded for both sides (as in the tests) unless OPENBLAS_NUM_THREADS is set:
multi-threaded BLAS on single frames mostly measures thread hand-offs, and on a shared
machine it spins against the other processes.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
STATION = REPO / "data" / "stations" / "optical-sim.yaml"
LARGE = (
    "instruments.slm.resolution=[1024, 1024]",
    "bench.layout.macropixels=[32, 32]",
    "bench.layout.macropixel_px=16",
    "bench.layout.reference_border=8",
)


def connect(*overrides: str):
    from labpnn.station import load_station

    return load_station(STATION, list(overrides)).connect()


def rates(calls: dict, rounds: int = 8) -> dict[str, float]:
    """Frames/s of each ``name: (fn, frames_per_call)`` over ``rounds`` interleaved calls.

    Totals, not best-of, so occasional costs (a drift step of the medium) count;
    interleaving spreads other load on a shared machine evenly over the contenders.
    """
    spent, frames = dict.fromkeys(calls, 0.0), dict.fromkeys(calls, 0)
    for fn, _n in calls.values():
        fn()  # warm-up
    for _ in range(rounds):
        for name, (fn, n) in calls.items():
            t = time.perf_counter()
            fn()
            spent[name] += time.perf_counter() - t
            frames[name] += n
    return {name: frames[name] / spent[name] for name in calls}


def direct_vs_raw(*overrides: str, batch: int = 256) -> dict:
    from labpnn.bench import make_bench
    from labpnn.bench.optical import average_pool

    st = connect("bench.simulation.transport=direct", *overrides)
    bench = make_bench(st)
    x = np.random.default_rng(0).random((batch, bench.n_in))
    n_pix = int(np.prod(bench.camera.roi[2:]))
    rng = np.random.default_rng(1)
    tm = (
        rng.standard_normal((bench.n_in, n_pix)) + 1j * rng.standard_normal((bench.n_in, n_pix))
    ) / 16
    h, w = bench.camera.roi[3], bench.camera.roi[2]

    def raw():
        field = np.exp(2j * np.pi * x) @ tm
        intensity = np.square(field.real) + np.square(field.imag)
        return average_pool(intensity.reshape(batch, h, w), *bench.pool_spec)

    fps = rates({"direct": (lambda: bench.measure(x), batch), "raw": (raw, batch)})
    direct, raw_fps = fps["direct"], fps["raw"]
    st.close()
    return {
        "shape": f"[{batch}, {bench.n_in}] @ [{bench.n_in}, {n_pix}] -> pool {bench.pooled_shape}",
        "direct_frames_per_s": round(direct),
        "raw_math_frames_per_s": round(raw_fps),
        "ratio": round(direct / raw_fps, 3),
    }


def full_path_overhead() -> dict:
    from labpnn.bench import make_bench

    n = 100
    x = np.random.default_rng(0).random((n, 256))
    stations, calls = [], {}
    for name, overrides in {
        "direct_batched": ("bench.simulation.transport=direct",),
        "direct_one_by_one": ("bench.simulation.transport=direct",),
        "full_memory_display": (),
        "full_offscreen_qt": ("bench.simulation.slm_display=offscreen",),
    }.items():
        st = connect(*overrides)
        stations.append(st)
        bench = make_bench(st)
        if name == "direct_one_by_one":
            calls[name] = (lambda b=bench: [b.measure(row[None]) for row in x[:20]], 20)
        else:
            calls[name] = (lambda b=bench: b.measure(x), n)
    per_frame = {k: 1e3 / v for k, v in rates(calls, rounds=5).items()}
    for st in stations:
        st.close()
    full, qt = per_frame["full_memory_display"], per_frame["full_offscreen_qt"]
    return {
        "ms_per_frame": {k: round(v, 3) for k, v in per_frame.items()},
        "overhead_ms_vs_direct_batched": round(full - per_frame["direct_batched"], 3),
        "overhead_ms_vs_direct_one_by_one": round(full - per_frame["direct_one_by_one"], 3),
        "offscreen_qt_extra_ms": round(qt - full, 3),
    }


def hardware_bound(n: int = 120) -> dict:
    from labpnn.bench import make_bench

    st = connect(
        "bench.simulation.clock=real-time",
        "instruments.slm.refresh_hz=60",
        "instruments.slm.settle_time_s=0.01",
        "instruments.camera.exposure_s=0.002",
    )
    bench = make_bench(st)
    phases = np.random.default_rng(0).uniform(0, 2 * np.pi, (n, *bench.macropixels))
    bench.acquire(phases[:2])
    pipelined = 0.0
    for _ in range(3):  # best of three: other processes on a shared machine delay wake-ups
        t = time.perf_counter()
        bench.acquire(phases)
        pipelined = max(pipelined, n / (time.perf_counter() - t))
    slm, cam = bench.slm, bench.camera
    t = time.perf_counter()
    for p in phases[: n // 4]:  # naive: show, wait until settled, expose, read, repeat
        bench.show_macropixel_phases(p)
        cam.grab(at=slm.ready_at)
    naive = (n // 4) / (time.perf_counter() - t)
    st.close()
    limit = 60.0  # one frame per SLM refresh: 10 ms settle + 2 ms exposure fit in 16.7 ms
    return {
        "timing": "60 Hz SLM, 10 ms settle, 2 ms exposure, 5 ms read-out, real-time clock",
        "pipelined_frames_per_s": round(pipelined, 2),
        "limit_frames_per_s": limit,
        "efficiency": round(pipelined / limit, 3),
        "naive_loop_frames_per_s": round(naive, 2),
    }


def main() -> None:
    report = {
        "machine": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default"),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
        "direct_vs_raw": {
            "bundled_noise": direct_vs_raw(),
            "noise_off": direct_vs_raw("bench.simulation.noise=off"),
            "large_layout_32x32": direct_vs_raw(*LARGE),
        },
        "full_path_overhead": full_path_overhead(),
        "hardware_bound": hardware_bound(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    main()
