"""PNG reports of run files: the procedure's own plots, or its result columns.

A procedure class may define ``plot_report(cls, f, figure)`` that draws on a
matplotlib figure from the open h5py file; otherwise every ``/results`` column is
plotted against the first column.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _generic(f: Any, figure: Any) -> None:
    cols = list(f["results"]) if "results" in f else []
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


def make_report(run_file: str | os.PathLike, output: str | os.PathLike | None = None) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from labpnn.catalog import procedure_class
    from labpnn.errors import BadInput
    from labpnn.storage import open_run

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
            cls.plot_report(f, figure)
        else:
            _generic(f, figure)
        figure.tight_layout(rect=(0, 0, 1, 0.96))
        figure.savefig(output)
        plt.close(figure)
    return output
