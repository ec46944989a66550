"""Framework overhead per hardware query: a training run's throughput against the bare bench.

A simulated optical bench runs in **real-time** mode (its world follows the wall clock and really
waits), with a 100 Hz SLM that settles in 5 ms, so one query takes about 10 ms, as on a fast real
bench; with a microsecond simulator the ratio would mean nothing. Then:

1. ``train-phyll`` runs in-process through the procedure's own code path (LabLayer, PhyLL's
   inner Adam steps, per-epoch HDF5 rows, checkpoints with the world's state, evaluations), and
   every batch it sends to the bench is recorded;
2. the same batch sizes are sent straight to the bench's PhysicalLayer on a fresh station.

The ratio ``wall(direct) / wall(training)`` is training throughput (queries per second) over the
bench's own throughput; 1.0 means the framework and the learning add nothing. Target: >= 0.9.
It is measured over the epoch loop (every query but the standardisation probes, which are sent
before it); the one-time set-up of the run (the first torch optimiser pulls in lazy imports that
take seconds) is reported separately, as is the ratio over the whole ``execute()``.

    python benchmarks/bench_training_overhead.py            # about a minute
    python benchmarks/bench_training_overhead.py --epochs 4 --batch-size 32
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

TARGET = 0.9
VOWELS_CSV = (
    Path(__file__).resolve().parents[2] / "shared" / "datasets" / "hillenbrand-women-7vowels.csv"
)


def real_time_station(refresh_hz: float, settle_s: float):
    from labpnn.station import StationConfig

    return StationConfig.load(
        "optical-sim",
        [
            "bench.simulation.transport=direct",
            "bench.simulation.clock=real-time",
            "bench.simulation.drift_per_s=0",
            "bench.layout.macropixels=[4,5]",  # the 20 vowel inputs
            "bench.layout.camera_roi=[0,0,16,16]",
            "bench.layout.pool=2",
            f"instruments.slm.refresh_hz={refresh_hz}",
            f"instruments.slm.settle_time_s={settle_s}",
        ],
    ).connect()


def train(args: argparse.Namespace, run_dir: Path) -> tuple[dict, list[int], dict]:
    """Wall times of execute() and of its epoch loop, the batch sizes sent, and the summary."""
    from labpnn.procedures.training.phyll import TrainPhyLL
    from labpnn.storage import RunWriter

    station = real_time_station(args.refresh_hz, args.settle_s)
    procedure = TrainPhyLL()
    settings = {
        "epochs": args.epochs,
        "eval_every": args.epochs,
        "checkpoint_every": 1,
        "batch_size": args.batch_size,
        "standardise_samples": 64,
        "train_eval_samples": 20,
        "seed": 0,
        "dataset_path": str(VOWELS_CSV) if VOWELS_CSV.is_file() else "",
    }
    for key, value in settings.items():
        procedure.set_parameter(key, value)
    procedure.station, procedure.station_config = station, station.config
    procedure.run = RunWriter(run_dir / "overhead.h5", {"procedure": procedure.name})
    try:
        procedure.validate()
        batches: list[int] = []
        layer = procedure.physical_layer()
        layer.on_query = lambda n, hook=layer.on_query: (batches.append(n), hook(n))
        wall = {}
        loop = procedure._train

        def timed_loop(trainer, task):
            wall["loop_first_call"] = len(batches)
            start_loop = time.perf_counter()
            loop(trainer, task)
            wall["loop"] = time.perf_counter() - start_loop

        procedure._train = timed_loop
        start = time.perf_counter()
        procedure.execute()
        wall["execute"] = time.perf_counter() - start
        summary = dict(procedure.run._summary)
        procedure.run.finish("completed")
    finally:
        station.close()
    return wall, batches, summary


def direct(args: argparse.Namespace, batches: list[int]) -> tuple[float, float]:
    """Wall time of the same batches sent straight to the PhysicalLayer; its hardware seconds."""
    import torch

    from labpnn.bench import make_bench

    station = real_time_station(args.refresh_hz, args.settle_s)
    try:
        bench = make_bench(station)
        generator = torch.Generator().manual_seed(0)
        inputs = [torch.rand(n, bench.n_in, generator=generator) for n in batches]
        start = time.perf_counter()
        for x in inputs:
            bench(x)
        return time.perf_counter() - start, bench.hardware_s
    finally:
        station.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=16, help="PhyLL mini-batch (rows x 2)")
    parser.add_argument("--refresh-hz", type=float, default=100.0)
    parser.add_argument("--settle-s", type=float, default=0.005)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        wall, batches, summary = train(args, Path(tmp))
    first = wall["loop_first_call"]
    loop_batches = batches[first:]
    direct_loop, hardware_s = direct(args, loop_batches)
    direct_all, _ = direct(args, batches)
    queries = sum(loop_batches)
    ratio = direct_loop / wall["loop"]
    numbers = {
        "queries": queries,
        "bench_calls": len(loop_batches),
        "query_ms": 1e3 * hardware_s / queries,
        "wall_direct_s": direct_loop,
        "wall_training_s": wall["loop"],
        "overhead_ms_per_query": 1e3 * (wall["loop"] - direct_loop) / queries,
        "throughput_ratio": ratio,
        "target": TARGET,
        "execute_s": wall["execute"],
        "execute_direct_s": direct_all,
        "execute_ratio": direct_all / wall["execute"],
        "setup_s": wall["execute"] - wall["loop"] - (direct_all - direct_loop),
        "test_accuracy": summary.get("test_accuracy"),
    }
    print(
        f"epoch loop: {queries} queries in {len(loop_batches)} bench calls, "
        f"{numbers['query_ms']:.2f} ms each (real-time optical bench)\n"
        f"  straight to the PhysicalLayer: {direct_loop:7.2f} s\n"
        f"  train-phyll epoch loop:        {wall['loop']:7.2f} s  "
        f"({numbers['overhead_ms_per_query']:+.2f} ms per query)\n"
        f"  throughput ratio {ratio:.3f} (target >= {TARGET}): {'PASS' if ratio >= TARGET else 'FAIL'}\n"
        f"whole execute() incl. set-up and standardisation: {wall['execute']:.2f} s against "
        f"{direct_all:.2f} s of bench time (ratio {numbers['execute_ratio']:.3f}; one-time set-up "
        f"{numbers['setup_s']:.1f} s)"
    )
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=1))
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
