"""``make demo``: calibrate the simulated optical bench, train a physical network, one report.

Runs calibrate-camera, calibrate-tm and validate-focus on ``optical-sim``, then a short
PhyLL training on the simulated acoustic bench (``acoustic-sim``, vowels), through the real
CLI (each its own process, exactly as a user would). Then it writes a PNG with the TM
amplitude, the focus spot, the enhancement against theory and the training curve.
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
TRAINING_STATION = "acoustic-sim"
# A short run (the published one is 200 epochs): the batched simulator path keeps it to
# seconds; its equivalence with the driver path is tested with the bench.
TRAINING = ["--station-set", "bench.simulation.transport=direct", "--set", "epochs=20",
            "--set", "eval_every=5", "--set", "checkpoint_every=20"]  # fmt: skip
VOWELS_CSV = Path(__file__).resolve().parents[2] / "shared/datasets/hillenbrand-women-7vowels.csv"


def _run(procedure: str, station: str, extra: list[str] = ()) -> Path:
    cmd = [sys.executable, "-m", "labpnn.cli", "run", procedure, "--station", station,
           "--tag", "demo", *extra]  # fmt: skip
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"demo: {procedure} ended with exit code {proc.returncode}")
    return Path(proc.stdout.strip().splitlines()[-1])


def _summary(path: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "labpnn.cli", "show", str(path), "--json"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(out.stdout)["summary"]


def report(tm_file: Path, focus_file: Path, training_file: Path, output: Path) -> Path:
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
    with h5py.File(training_file, "r") as f:
        epoch = f["results/epoch"][()]
        test, train = f["results/test_accuracy"][()], f["results/train_accuracy"][()]
        source = str(f.attrs.get("dataset_source", ""))
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.6), dpi=100)
    ax = axes[0]
    block = np.abs(tm[: tm.shape[1]])  # a square block: first camera pixels x all modes
    im = ax.imshow(block, cmap="viridis")
    fig.colorbar(im, ax=ax, fraction=0.046, label="ADU")
    ax.set_title(
        f"|TM|: first {block.shape[0]} of {tm.shape[0]} camera pixels × {tm.shape[1]} modes\n"
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
    ax = axes[3]
    scored = np.isfinite(test)
    ax.plot(epoch[scored], train[scored], "s--", label="train")
    ax.plot(epoch[scored], test[scored], "o-", label="test")
    ax.axhline(1 / 7, color="grey", ls=":", label="chance (1/7)")
    ax.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1.02))
    ax.set_title(f"PhyLL on {TRAINING_STATION}, 7 vowels\n(data: {source or 'unknown'})")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.suptitle("labpnn demo: simulated optical bench (optical-sim) and acoustic bench")
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
    print("== train-phyll: a physical network of two acoustic-cavity layers, vowels", flush=True)
    dataset = ["--set", f"dataset_path={VOWELS_CSV}"] if VOWELS_CSV.is_file() else []
    files["train-phyll"] = _run("train-phyll", TRAINING_STATION, [*TRAINING, *dataset])
    summary = _summary(files["train-phyll"])
    print(f"   test accuracy {summary['test_accuracy']:.3f} (train {summary['train_accuracy']:.3f}) "
          f"after {summary['queries']:.0f} bench queries, {summary['hardware_s'] / 3600:.1f} h "
          "of simulated bench time")  # fmt: skip
    print(f"   run file: {files['train-phyll']}\n", flush=True)
    png = report(files["calibrate-tm"], files["validate-focus"], files["train-phyll"],
                 files["validate-focus"].parent / "demo-report.png")  # fmt: skip
    print(f"report: {png}")
    print(f"done in {time.time() - t0:.0f} s. Try: labpnn show {files['validate-focus']}")


if __name__ == "__main__":
    main(*sys.argv[1:])
