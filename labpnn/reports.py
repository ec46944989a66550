"""PNG reports of run files: the procedure's own plots, or its result columns.

A procedure class may define ``plot_report(cls, f, figure)`` that draws on a
matplotlib figure from the open h5py file; otherwise every ``/results`` column is
plotted against the first column.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from labpnn.storage import open_run, stream_names


def count_ticks(axis: Any) -> None:
    """Whole-number ticks on a matplotlib axis of counts (epochs, calls, iterations)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def cost_scale(ax: Any, values: Any, axis: str = "x") -> None:
    """A log scale for costs that span a decade or more; a linear one (offset notation)
    otherwise, where log ticks would crowd into unreadable labels like 2.066×10¹¹."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite) & (finite > 0)]
    if finite.size and finite.max() >= 10 * finite.min():
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")


def _frames(f: Any, figure: Any) -> bool:
    """The last kept camera frame and each frame's mean, for a run without result columns."""
    names = stream_names(f["frames"]) if "frames" in f else []
    if not names or f["frames"][names[0]].shape[0] == 0:
        return False
    frames = f["frames"][names[0]]
    last = figure.add_subplot(1, 2, 1)
    image = last.imshow(frames[-1], cmap="gray")
    figure.colorbar(image, ax=last, shrink=0.8)
    last.set_title(f"last of {frames.shape[0]} '{names[0]}' frames")
    mean = figure.add_subplot(1, 2, 2)
    mean.plot([float(frames[i].mean()) for i in range(frames.shape[0])], marker=".")
    mean.set(xlabel="frame", ylabel="mean value", title="mean of each frame")
    mean.grid(alpha=0.3)
    return True


def _generic(f: Any, figure: Any) -> None:
    cols = list(f["results"]) if "results" in f else []
    if not cols and _frames(f, figure):
        return
    if not cols:
        ax = figure.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no result columns in this run", ha="center", va="center")
        ax.set_axis_off()
        return
    x_name = "epoch" if "epoch" in cols else ("step" if "step" in cols else None)
    ys = [c for c in cols if c != x_name]
    n = max(1, len(ys))
    for i, name in enumerate(ys or cols):
        ax = figure.add_subplot(n, 1, i + 1)
        y = f["results"][name][()]
        x = f["results"][x_name][()] if x_name else range(len(y))
        if y.ndim == 1:
            ax.plot(x, y, marker=".")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    ax.set_xlabel(x_name or "row")


def _why_not(exc: Exception) -> str:
    text = str(exc.args[0]) if exc.args else type(exc).__name__
    if not isinstance(exc, KeyError):
        return f"what this run kept cannot be drawn that way ({type(exc).__name__}: {text})"
    if "doesn't exist" in text and "'" in text:  # h5py: "... (object 'tm' doesn't exist)"
        text = f"'{text.split(chr(39))[1]}'"
    return f"this run did not write {text}"


def _kept(f: Any) -> str:
    parts = []
    for group, what in (("results", "rows"), ("frames", "frames"), ("traces", "traces")):
        if group in f:
            counts = [f[group][k].shape[0] for k in stream_names(f[group])]
            if counts:
                parts.append(f"{max(counts)} {what}")
    return ", ".join(parts) or "no data"


def make_report(run_file: str | os.PathLike, output: str | os.PathLike | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from labpnn.catalog import procedure_class
    from labpnn.errors import BadInput

    run_file = Path(run_file)
    output = Path(output) if output else run_file.with_suffix(".png")
    with open_run(run_file) as f:
        name = f.attrs.get("procedure", "")
        name = name.decode() if isinstance(name, bytes) else str(name)
        try:
            cls = procedure_class(name)
        except BadInput:
            cls = None
        figure = plt.figure(figsize=(11, 7), dpi=100)
        status = f.attrs.get("status", "?")
        figure.suptitle(
            f"{name} on {f.attrs.get('station', '?')} — {status}  ({run_file.name})", fontsize=10
        )
        if cls is not None and hasattr(cls, "plot_report"):
            try:
                cls.plot_report(f, figure)
            except (KeyError, ValueError, IndexError) as exc:
                # An aborted or failed run lacks what the procedure's report draws; the
                # morning after, its kept data are still worth a plot.
                figure.clf()
                figure.suptitle(
                    f"{name} on {f.attrs.get('station', '?')} — {status}  ({run_file.name})\n"
                    f"no {name} report: {_why_not(exc)}; kept: {_kept(f)}",
                    fontsize=10,
                )
                _generic(f, figure)
        else:
            _generic(f, figure)
        figure.tight_layout(rect=(0, 0, 1, 0.96))
        figure.savefig(output)
        plt.close(figure)
    return output
