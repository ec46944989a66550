"""Benchmark the VNA driver, data transfer formats and the microwave PhysicalLayer; print JSON.

Run: ``python benchmarks/bench_vna.py [--quick]``. Three measurements, each as a ratio:

1. ``driver_vs_raw``: sweeps per second of the labpnn driver against a raw pyvisa-py socket
   client doing the same SCPI exchanges (trigger, ``*OPC?``, trace read, ``SYST:ERR?``),
   against an *instant* mock (fixed data: pure transport and driver overhead) and against
   the cavity mock (each sweep simulated). Target ≥ 0.7.
2. ``transfer``: one trace read in ``REAL,64`` binary against ``ASCII`` at 1,601 and 16,001
   points, raw pyvisa and through the driver.
3. ``physical_layer``: microwave PhysicalLayer queries per second, full path (serial pty +
   VNA socket) and direct path, against calling the simulator itself per configuration.
   Target ≥ 0.8.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pyvisa

from labpnn.drivers.vna import KeysightENA
from labpnn.mock_instruments.vna_server import MockVNA, VNAServer


def rates(fn, seconds: float, min_calls: int = 5) -> tuple[float, float]:
    """Calls per second of ``fn`` over about ``seconds`` (after a warm-up call): by wall
    clock, and by this process's CPU time (all its threads), which other processes' load
    does not inflate."""
    fn()
    calls, t0, c0 = 0, time.perf_counter(), time.process_time()
    while calls < min_calls or time.perf_counter() - t0 < seconds:
        fn()
        calls += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return calls / wall, calls / max(cpu, 1e-9)


def rate(fn, seconds: float, min_calls: int = 5) -> float:
    return rates(fn, seconds, min_calls)[0]


def instant_server(points_max: int = 16_001) -> VNAServer:
    """A mock VNA whose sweeps cost nothing: fixed data, zero sweep time."""
    cache: dict[int, np.ndarray] = {}

    def measure(state):
        if state.points not in cache:
            f = state.frequencies()
            s = np.zeros((len(f), 2, 2), complex)
            s[:] = (0.3 + 0.4j) * np.exp(1j * f / 1e8)[:, None, None]
            cache[state.points] = s
        return cache[state.points], 0.0

    return VNAServer(MockVNA(measure)).start()


def raw_client(address: str):
    rm = pyvisa.ResourceManager("@py")
    res = rm.open_resource(address, read_termination="\n", write_termination="\n", timeout=10000)
    # The same Nagle fix the driver applies (pyvisa-py cannot set VI_ATTR_TCPIP_NODELAY).
    sock = res.visalib.sessions[res.session].interface
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return res


def raw_setup(res, points: int, fmt: str = "FORM:DATA REAL,64") -> None:
    for cmd in ("FORM:BORD SWAP", fmt, "TRIG:SOUR BUS", "SENS1:FREQ:STAR 2E9",
                "SENS1:FREQ:STOP 2.5E9", f"SENS1:SWE:POIN {points}", "SENS1:BWID 10000",
                "CALC1:PAR:COUN 1", "CALC1:PAR1:DEF S21", "CALC1:PAR1:SEL"):  # fmt: skip
        res.write(cmd)
    assert res.query("SYST:ERR?").startswith("+0")


def raw_sweep(res, points: int) -> np.ndarray:
    res.write("TRIG:SING")
    assert res.query("*OPC?").strip() == "1"
    data = res.query_binary_values(
        "CALC1:DATA:SDAT?", datatype="d", is_big_endian=False, container=np.array
    )
    assert res.query("SYST:ERR?").startswith("+0")
    return data[0::2] + 1j * data[1::2]


def driver(address: str, points: int, fmt: str = "binary") -> KeysightENA:
    vna = KeysightENA(address=address, transfer_format=fmt, timeout_s=10)
    vna.configure(2.0e9, 2.5e9, points, 1e4, -10)
    vna.define_traces(["S21"])
    return vna


def serve(kind: str) -> None:
    """``--serve instant|cavity``: run a mock VNA in this process until stdin closes."""
    if kind == "instant":
        server = instant_server()
        print(server.address, flush=True)
        sys.stdin.read()
        server.close()
    else:
        from labpnn.mock_instruments.vna_server import serve_vna

        stop = threading.Event()
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
        serve_vna(clock="fast", stop=stop, announce=lambda line: print(line, flush=True))


@contextlib.contextmanager
def server_process(kind: str):
    """A mock VNA in its own process, like a real instrument (no shared GIL)."""
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()
        yield line.split()[-1]
    finally:
        proc.stdin.close()
        proc.wait(10)


def interleaved(fns: dict, seconds: float, rounds: int, min_calls: int = 5) -> dict:
    """Wall and CPU rates of each function over alternating rounds, so that a change of load
    on a shared machine hits all of them alike; medians are reported."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            samples[name].append(rates(fn, seconds / rounds, min_calls))
    return {name: np.array(values) for name, values in samples.items()}  # [rounds, 2]


def median_ratio(samples: dict, a: str, b: str, column: int = 0) -> float:
    """Median over rounds of rate(a) / rate(b)."""
    return round(float(np.median(samples[a][:, column] / samples[b][:, column])), 3)


def bench_driver_vs_raw(seconds: float, rounds: int) -> dict:
    """Mock VNA in its own process; client-side CPU per sweep is reported too."""
    out = {}
    for kind in ("instant", "cavity"):
        with server_process(kind) as address:
            res = raw_client(address)
            raw_setup(res, 201)
            vna = driver(address, 201)
            s = interleaved(
                {
                    "raw": lambda res=res: raw_sweep(res, 201),
                    "arrays": vna.sweep_arrays,
                    "network": vna.sweep,
                },
                seconds,
                rounds,
            )
            res.close()
            vna.close()
        out[f"{kind}_mock"] = {
            "points": 201,
            "raw_pyvisa_sweeps_per_s": round(float(np.median(s["raw"][:, 0])), 1),
            "driver_sweep_arrays_per_s": round(float(np.median(s["arrays"][:, 0])), 1),
            "driver_sweep_network_per_s": round(float(np.median(s["network"][:, 0])), 1),
            "ratio_arrays": median_ratio(s, "arrays", "raw"),
            "ratio_network": median_ratio(s, "network", "raw"),
            "client_cpu_ms_per_sweep": {
                k: round(1e3 / float(np.median(v[:, 1])), 3) for k, v in s.items()
            },
        }
    return out


def bench_transfer(seconds: float) -> dict:
    out = {}
    with server_process("instant") as address:
        for points in (1601, 16001):
            res = raw_client(address)
            raw_setup(res, points)
            res.write("TRIG:SING")
            res.query("*OPC?")
            binary = 1 / rate(
                lambda res=res: res.query_binary_values(
                    "CALC1:DATA:SDAT?", datatype="d", is_big_endian=False, container=np.array,
                    chunk_size=1 << 20,
                ),
                seconds,
            )  # fmt: skip
            res.write("FORM:DATA ASCII,0")
            ascii_ = 1 / rate(
                lambda res=res: res.query_ascii_values("CALC1:DATA:SDAT?", container=np.array),
                seconds,
            )
            res.close()
            per_format = {}
            for fmt in ("binary", "ascii"):
                vna = driver(address, points, fmt)
                per_format[fmt] = 1 / rate(vna.sweep_arrays, seconds)
                vna.close()
            out[str(points)] = {
                "raw_binary_read_ms": round(binary * 1e3, 3),
                "raw_ascii_read_ms": round(ascii_ * 1e3, 3),
                "raw_ascii_over_binary": round(ascii_ / binary, 2),
                "driver_binary_sweep_ms": round(per_format["binary"] * 1e3, 3),
                "driver_ascii_sweep_ms": round(per_format["ascii"] * 1e3, 3),
                "driver_ascii_over_binary": round(per_format["ascii"] / per_format["binary"], 2),
            }
    return out


def bench_physical_layer(seconds: float, batch: int, rounds: int) -> dict:
    """Queries/s of the bench (full and direct paths) against the simulator, in-process.

    ``simulator``: the cavity model alone, one configuration at a time. ``simulator_sweep``:
    what the mock VNA computes per sweep (cavity + error boxes + noise + timing), called
    directly. CPU-time ratios count every thread of this process (client, VNA server,
    metasurface pty), so they measure work, not the machine's load.
    """
    from labpnn.bench import make_bench
    from labpnn.station import StationConfig

    x = np.random.default_rng(0).random((batch, 20))
    stations = {
        t: StationConfig.load("microwave-sim", [f"bench.simulation.transport={t}"]).connect()
        for t in ("full", "direct")
    }
    try:
        layers = {t: make_bench(st) for t, st in stations.items()}
        world = stations["full"].world
        f = world.vna.state.frequencies()
        configs = layers["full"].encode(x)

        def simulator():
            for i in range(batch):
                world.cavity.s_params(configs[i : i + 1], f)

        def simulator_sweep():
            for i in range(batch):
                world.set_configuration(configs[i])
                world.clock.sleep(layers["full"].settle_s)
                world._sweep(world.vna.state)

        s = interleaved(
            {
                "full": lambda: layers["full"](x),
                "direct": lambda: layers["direct"](x),
                "simulator": simulator,
                "simulator_sweep": simulator_sweep,
            },
            seconds,
            rounds,
            min_calls=1,
        )
    finally:
        for station in stations.values():
            station.close()
    out: dict = {"batch": batch}
    for name in s:
        out[f"{name}_queries_per_s"] = round(float(np.median(s[name][:, 0])) * batch, 1)
    for column, clock in ((0, "wall"), (1, "cpu")):
        for path in ("full", "direct"):
            for ref in ("simulator", "simulator_sweep"):
                out[f"{clock}_ratio_{path}_vs_{ref}"] = median_ratio(s, path, ref, column)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short timings (smoke test)")
    parser.add_argument("--serve", choices=("instant", "cavity"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    seconds, rounds = (1.0, 3) if args.quick else (10.0, 10)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    report = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1min_at_start": load,
        },
        "driver_vs_raw": bench_driver_vs_raw(seconds, rounds),
        "transfer": bench_transfer(seconds / 4),
        "physical_layer": bench_physical_layer(seconds, 20 if args.quick else 50, rounds),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
