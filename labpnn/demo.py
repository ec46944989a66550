"""``make demo``: calibrate the simulated optical bench end to end and draw one report.

Runs calibrate-camera, calibrate-tm and validate-focus on ``optical-sim`` through the
real CLI (each its own process, exactly as a user would), then writes a PNG with the
TM amplitude, the focus spot and the enhancement against theory.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

STEPS = [
    ("calibrate-camera", "dark frame and an exposure below saturation"),
    ("calibrate-tm", "transmission matrix by Hadamard phase stepping (N = 256)"),
    ("validate-focus", "phase-conjugation focusing from that TM"),
]


def _run(procedure: str, station: str) -> Path:
    cmd = [sys.executable, "-m", "labpnn.cli", "run", procedure, "--station", station,
           "--tag", "demo"]  # fmt: skip
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"demo: {procedure} ended with exit code {proc.returncode}")
    return Path(proc.stdout.strip().splitlines()[-1])


def _summary(path: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "labpnn.cli", "show", str(path), "--json"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(out.stdout)["summary"]


def report(tm_file: Path, focus_file: Path, output: Path) -> Path:
    import h5py
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from labpnn.calibration.tm import theory_enhancement

    with h5py.File(tm_file, "r") as f:
        tm = f["calibration/tm"][()]
        pearson = f["summary"].attrs.get("pearson", float("nan"))
    with h5py.File(focus_file, "r") as f:
        focus = f["frames/focus"][-1]
        modes = f["results/n_modes"][()]
        eta = f["results/enhancement"][()]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), dpi=100)
    ax = axes[0]
    block = np.abs(tm[: tm.shape[1]])  # a square block: first camera pixels x all modes
    im = ax.imshow(block, cmap="viridis")
    fig.colorbar(im, ax=ax, fraction=0.046, label="ADU")
    ax.set_title(
        f"|TM|: {block.shape[0]} camera pixels × {tm.shape[1]} modes\n"
        f"column |Pearson| against the simulator's truth: {pearson:.4f}"
    )
    ax.set_xlabel("SLM mode")
    ax.set_ylabel("camera pixel")
    ax = axes[1]
    peak = np.unravel_index(np.argmax(focus), focus.shape)
    r0, c0 = (max(0, min(p - 12, n - 24)) for p, n in zip(peak, focus.shape))
    im = ax.imshow(
        focus[r0 : r0 + 24, c0 : c0 + 24],
        cmap="inferno",
        extent=(c0 - 0.5, c0 + 23.5, r0 + 23.5, r0 - 0.5),
    )
    fig.colorbar(im, ax=ax, fraction=0.046, label="ADU")
    ax.set_title("focus through the scattering medium (24×24 px crop)")
    ax.set_xlabel("camera x (px)")
    ax.set_ylabel("camera y (px)")
    ax = axes[2]
    sizes = np.unique(modes)
    ax.plot(modes, eta, "o", alpha=0.4, label="measured, per target")
    ax.plot(sizes, [eta[modes == s].mean() for s in sizes], "s-", label="measured, mean")
    grid = np.geomspace(sizes.min(), sizes.max(), 100)
    ax.plot(grid, theory_enhancement(grid), "k--", label="theory (π/4)(N−1)+1")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("controlled modes N")
    ax.set_ylabel("enhancement η")
    ax.set_title("enhancement against theory")
    ax.legend()
    fig.suptitle("labpnn demo: simulated optical bench (optical-sim)")
    fig.tight_layout()
    fig.savefig(output)
    plt.close(fig)
    return output


def main(station: str = "optical-sim") -> None:
    t0 = time.time()
    print(f"labpnn demo on the simulated bench '{station}'\n", flush=True)
    files = {}
    for procedure, what in STEPS:
        print(f"== {procedure}: {what}", flush=True)
        files[procedure] = _run(procedure, station)
        summary = _summary(files[procedure])
        shown = {k: v for k, v in summary.items() if not k.startswith("enhancement_ratio_")}
        print("   " + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in shown.items()))  # fmt: skip
        print(f"   run file: {files[procedure]}\n", flush=True)
    png = report(files["calibrate-tm"], files["validate-focus"],
                 files["validate-focus"].parent / "demo-report.png")  # fmt: skip
    print(f"report: {png}")
    print(f"done in {time.time() - t0:.0f} s. Try: labpnn show {files['validate-focus']}")


if __name__ == "__main__":
    main(*sys.argv[1:])
