"""Acoustic bench throughput, as ratios measured in one process.

1. The acoustic PhysicalLayer on the full path (AcousticBench -> SoundCard driver -> the
   sounddevice-shaped back-end -> the world), against the same physics called directly: the
   same burst handed to the world's ``record`` and read at the true latency, with no driver,
   no alignment and no layer. Target >= 0.8.
2. For information: the batched ``direct`` transport (``world.measure_amplitudes``), in
   samples per second, and its ms per sample (budget: <= 1 ms).

All paths use the same seed and must return identical outputs; the script checks that.
Each path runs single-threaded; rates are reported per CPU second of this process (what the
code costs) and per wall second (what a busy machine also adds), best of R interleaved runs.

Usage: python benchmarks/bench_acoustic.py [--samples N] [--batch B] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

from labpnn.bench.acoustic import AcousticBench
from labpnn.station import load_station


def connect(transport: str):
    return load_station("acoustic-sim", [f"bench.simulation.transport={transport}"]).connect()


def clocks() -> np.ndarray:
    return np.array([time.process_time(), time.perf_counter()])


def layer_path(x: np.ndarray, batch: int, transport: str = "full") -> tuple[np.ndarray, np.ndarray]:
    station = connect(transport)
    bench = AcousticBench(station)
    t0 = clocks()
    out = np.concatenate([bench(x[i : i + batch]).numpy() for i in range(0, len(x), batch)])
    elapsed = clocks() - t0
    station.close()
    return elapsed, out


def simulator_path(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same physics without the driver: burst -> world.record -> tones at the true latency."""
    station = connect("full")
    world, card = station.world, station["audio"]
    plan, level = world.plan, card.output_level
    mark, pad = card.sync_mark, np.zeros(card.pad_samples)
    speaker, (loop_out, loop_in) = world.speaker_channel, world.loopback_channels
    scale = level / plan.n_tones
    out = np.empty_like(x)
    t0 = clocks()
    for row, amps in enumerate(np.clip(x, 0, 1) / plan.n_tones):
        signal = plan.signal(amps)
        loop = (np.concatenate([mark, signal, pad]) * level).astype(np.float32)
        drive = (np.concatenate([0 * mark, signal, pad]) * level).astype(np.float32)
        recorded = world.record(
            {speaker: drive.astype(np.float64), loop_out: loop.astype(np.float64)},
            [world.mic_channel, loop_in],
        )
        start = world.last_latency_samples + len(mark)
        window = plan.window(recorded[start : start + plan.n_samples, 0])
        out[row] = plan.tone_amplitudes(window) / scale
    elapsed = clocks() - t0
    station.close()
    return elapsed, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3, help="best of R runs per path")
    args = parser.parse_args()
    x = np.random.default_rng(0).uniform(0, 1, (args.samples, 20))
    best: dict[str, np.ndarray] = {}
    outputs: dict[str, np.ndarray] = {}
    with threadpool_limits(limits=1):
        for _ in range(args.repeats):  # interleaved, so a busy machine slows every path alike
            for name, run in (
                ("layer_full", lambda: layer_path(x, args.batch)),
                ("simulator", lambda: simulator_path(x)),
                ("layer_direct", lambda: layer_path(x, args.batch, "direct")),
            ):
                elapsed, outputs[name] = run()
                best[name] = np.minimum(best.get(name, np.inf), elapsed)
    cpu = {name: args.samples / t[0] for name, t in best.items()}
    wall = {name: args.samples / t[1] for name, t in best.items()}
    agree = float(
        np.max(np.abs(outputs["layer_full"] - outputs["simulator"]))
        + np.max(np.abs(outputs["layer_full"] - outputs["layer_direct"]))
    )
    print(
        json.dumps(
            {
                "samples": args.samples,
                "batch": args.batch,
                "cpu_count": os.cpu_count(),
                "layer_full_queries_per_cpu_s": round(cpu["layer_full"], 1),
                "simulator_calls_per_cpu_s": round(cpu["simulator"], 1),
                "ratio_full_layer_vs_simulator": round(cpu["layer_full"] / cpu["simulator"], 3),
                "ratio_full_layer_vs_simulator_wall": round(
                    wall["layer_full"] / wall["simulator"], 3
                ),
                "target_ratio": 0.8,
                "layer_direct_transport_queries_per_cpu_s": round(cpu["layer_direct"], 1),
                "direct_ms_per_sample": round(1e3 / cpu["layer_direct"], 3),
                "direct_ms_per_sample_wall": round(1e3 / wall["layer_direct"], 3),
                "max_output_difference_between_paths": agree,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
