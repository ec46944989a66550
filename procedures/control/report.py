"""The one-page report of a control run: targets beside projections, fidelity curves.

Reads only plain HDF5 (``/control/targets``, ``/frames/projections``, ``/results``,
``/traces/fidelity``), so it also draws files written by older versions or still running.
"""

from __future__ import annotations

from typing import Any

import numpy as np

N_SHOWN = 6


def _column(f: Any, name: str) -> np.ndarray | None:
    return f["results"][name][()] if "results" in f and name in f["results"] else None


def _counting_axis(ax: Any, x: np.ndarray, label: str) -> None:
    """Integer ticks; iterations get half a step either side, queries start at zero.

    A single evaluation would otherwise sit in a meaningless ±0.04 window.
    """
    from matplotlib.ticker import MaxNLocator

    low, high = float(np.min(x)), float(np.max(x))
    if label == "hardware queries":
        ax.set_xlim(0, max(high, 1.0) * 1.08)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, integer=True))
    else:
        ax.set_xlim(low - 0.5, high + 0.5)
        # MaxNLocator falls back to fractions on a short span: one tick per iteration there
        ax.xaxis.set_major_locator(MaxNLocator(nbins=10, integer=True, min_n_ticks=1))
    ax.set_xlabel(label)


def plot_control(f: Any, figure: Any) -> None:
    grid = figure.add_gridspec(3, 2 * N_SHOWN, height_ratios=[1, 1, 2.2])
    targets = f["control/targets"][()] if "control/targets" in f else None
    shots = f["frames/projections"] if "frames/projections" in f else None
    last_fidelity = f["traces/fidelity"][-1] if "traces/fidelity" in f else None
    if targets is not None and shots is not None and len(shots) >= len(targets):
        final = shots[len(shots) - len(targets) :]
        for i in range(min(N_SHOWN, len(targets))):
            ax = figure.add_subplot(grid[0, 2 * i : 2 * i + 2])
            ax.imshow(targets[i], cmap="gray")
            ax.set_axis_off()
            ax.set_title(f"target {i}", fontsize=8)
            ax = figure.add_subplot(grid[1, 2 * i : 2 * i + 2])
            ax.imshow(final[i], cmap="magma")
            ax.set_axis_off()
            label = f"r={last_fidelity[i]:.3f}" if last_fidelity is not None else "projected"
            ax.set_title(label, fontsize=8)
    iteration, queries = _column(f, "iteration"), _column(f, "queries")
    fidelity, spread = _column(f, "fidelity"), _column(f, "fidelity_std")
    if fidelity is None or len(fidelity) == 0:
        ax = figure.add_subplot(grid[2, :])
        ax.text(0.5, 0.5, "no evaluation recorded yet", ha="center", va="center")
        ax.set_axis_off()
        return
    p10 = _column(f, "fidelity_p10")
    summary = f["summary"].attrs if "summary" in f else {}
    chance = summary.get("baseline_fidelity")
    chance_std = float(summary.get("baseline_fidelity_std", 0.0))
    half = N_SHOWN
    for col, (x, label) in enumerate(
        ((iteration, "outer iteration"), (queries, "hardware queries"))
    ):
        ax = figure.add_subplot(grid[2, col * half : (col + 1) * half])
        if len(x) == 1:  # a band needs two points: one evaluation gets an error bar
            ax.errorbar(x, fidelity, yerr=spread, marker="o", capsize=4, label="mean ± std")
        else:
            ax.plot(x, fidelity, marker="o", label="mean fidelity")
            ax.fill_between(x, fidelity - spread, fidelity + spread, alpha=0.25, label="± std")
        if p10 is not None:
            ax.plot(x, p10, ls=":", marker="_", ms=10, color="gray", label="10th percentile")
        _counting_axis(ax, x, label)
        ax.axhline(0.9, color="k", lw=0.8, ls="--", label="S2 floor 0.90")
        floor = [0.85]
        if chance is not None:
            ax.axhline(float(chance), color="tab:red", lw=1.0, label="random SLM patterns")
            ax.axhspan(float(chance) - chance_std, float(chance) + chance_std,
                       color="tab:red", alpha=0.12)  # fmt: skip
            floor.append(float(chance) - chance_std)
        ax.set_ylabel("Pearson fidelity")
        low = float(np.nanmin(np.concatenate([fidelity - spread, floor])))
        ax.set_ylim(min(0.0, low - 0.02) if chance is not None else max(0.0, low - 0.02), 1.0)
        if col == 1 and chance is not None:
            ax.set_title(
                f"final fidelity {fidelity[-1]:.3f} ± {spread[-1]:.3f}; "
                f"random patterns {float(chance):.3f} ± {chance_std:.3f}",
                fontsize=9,
            )
        ax.grid(alpha=0.3)
        if col == 0:
            ax.legend(fontsize=7, loc="lower right")
    ratio = f.attrs.get("dof_per_target_pixel")
    if ratio is not None:
        figure.text(
            0.01, 0.005, f"controlled SLM DOF per target pixel: {float(ratio):.2f}", fontsize=8
        )
