"""Curves of a run's scalar columns: losses, costs and everything else on separate plots.

The x axis is ``epoch`` when the run records one, else ``step``, else the row index.
Losses, accuracies and the cumulative costs of a training run (queries, hardware seconds,
digital FLOPs, in the thousands to billions) live on such different scales that one plot
would flatten the others, hence a plot each, the costs on a log scale. Used both live (fed by the SWMR watcher) and in the run
browser, where a second run's curves are drawn dashed for comparison.

Live, a third plot follows the camera signal (mean and peak counts of every
thumbnail, against the full scale), because a calibration records no curves and the
operator still wants to see saturation or a fading beam as it happens.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtWidgets import QLabel, QVBoxLayout, QWidget

X_COLUMNS = ("epoch", "step", "iteration", "index", "frame")
PALETTE = (
    "#4fc3f7",
    "#ffb74d",
    "#81c784",
    "#e57373",
    "#ba68c8",
    "#fff176",
    "#4db6ac",
    "#f06292",
    "#a1887f",
    "#90a4ae",
)
SIGNAL_POINTS = 3000
THIN_ABOVE_POINTS = 300  # wide antialiased lines are slow to draw through many points


def x_axis(columns: dict[str, np.ndarray]) -> tuple[str, np.ndarray | None]:
    for name in X_COLUMNS:
        if name in columns:
            return name, columns[name]
    return "row", None


# What training runs log per epoch about their cost: the cumulative counters of
# labpnn.learning.costs.Costs, the rows of an evaluation the bench gave no finite data for,
# and the epoch's wall time. (Counts on the accuracy plot would stretch its 0..1 scale.)
COST_COLUMNS = frozenset(
    {"queries", "eval_queries", "twin_queries", "hardware_s", "digital_flops", "skipped_batches",
     "bad_eval_rows", "wall_s"}
)  # fmt: skip


def is_loss(name: str) -> bool:
    return "loss" in name.lower() or "error" in name.lower()


def kind_of(name: str) -> str:
    """Which plot a column goes on: ``loss``, ``cost`` or ``metric``."""
    if is_loss(name):
        return "loss"
    return "cost" if name in COST_COLUMNS else "metric"


class CurvesView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.updates = 0
        self.loss_plot = pg.PlotWidget(title="loss")
        self.metric_plot = pg.PlotWidget(title="metrics")
        self.cost_plot = pg.PlotWidget(title="cost (log scale)")
        self.cost_plot.setLogMode(y=True)
        self.signal_plot = pg.PlotWidget(title="camera signal")
        self.plots = {"loss": self.loss_plot, "metric": self.metric_plot, "cost": self.cost_plot}
        for plot in (*self.plots.values(), self.signal_plot):
            plot.showGrid(x=True, y=True, alpha=0.3)
            plot.addLegend(offset=(-10, 10))
            # A 1.5 px antialiased line through 3000 noisy points took ~100 ms per
            # repaint on a software raster, a 1 px one ~7 ms: dense curves stay thin.
            plot.setDownsampling(auto=True, mode="peak")
            plot.setClipToView(True)
        self._x_master: pg.PlotWidget | None = None
        self.signal_plot.setLabel("bottom", "time since start", units="s")
        self.signal_plot.setLabel("left", "counts")
        self.mean_curve = self.signal_plot.plot(pen=pg.mkPen("#4fc3f7", width=1), name="mean")
        self.max_curve = self.signal_plot.plot(pen=pg.mkPen("#ffb74d", width=1), name="peak")
        self.full_scale = pg.InfiniteLine(
            angle=0, pen=pg.mkPen("#e53935", style=Qt.PenStyle.DashLine)
        )
        self.full_scale.setVisible(False)
        self.signal_plot.addItem(self.full_scale)
        self.empty = QLabel("No curves yet: they appear when a run records scalar columns.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setStyleSheet("color: palette(mid);")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.empty)
        layout.addWidget(self.loss_plot, 1)
        layout.addWidget(self.metric_plot, 1)
        layout.addWidget(self.cost_plot, 1)
        layout.addWidget(self.signal_plot, 1)
        self._curves: dict[tuple[str, str], pg.PlotDataItem] = {}
        self._signal: list[tuple[float, float, float]] = []
        self._t0 = 0.0
        self._signal_dirty = False
        self._timer = QTimer(self)
        self._timer.setInterval(250)  # the signal plot redraws at 4 Hz, not per frame
        self._timer.timeout.connect(self._draw_signal)
        self._timer.start()
        self._update_visibility()

    def clear(self) -> None:
        for plot in self.plots.values():
            for curve in [c for c in plot.listDataItems()]:
                plot.removeItem(curve)
            if plot.plotItem.legend is not None:
                plot.plotItem.legend.clear()
        self._curves.clear()
        self._signal.clear()
        self.mean_curve.setData([], [])
        self.max_curve.setData([], [])
        self.full_scale.setVisible(False)
        self._update_visibility()

    def _update_visibility(self) -> None:
        kinds = {kind_of(name) for _, name in self._curves}
        for kind, plot in self.plots.items():
            plot.setVisible(kind in kinds)
        self._link_x([plot for kind, plot in self.plots.items() if kind in kinds])
        self.signal_plot.setVisible(bool(self._signal))
        self.empty.setVisible(not (kinds or self._signal))

    def _link_x(self, shown: list) -> None:
        """Share the x axis through the first plot shown.

        A linked plot follows its master's x range and does not autorange its own, so a hidden
        master (a run without a loss column) would freeze the others at its empty range.
        """
        master = shown[0] if shown else None
        if master is self._x_master:
            return
        self._x_master = master
        for plot in self.plots.values():
            plot.setXLink(None)
        for plot in shown[1:]:
            # a follower autoranging on its own would push its range onto the master and
            # switch the master's autorange off
            plot.enableAutoRange(axis="x", enable=False)
            plot.setXLink(master)
        if master is not None:
            master.enableAutoRange(axis="x")

    def set_columns(
        self,
        columns: dict[str, np.ndarray],
        run: str = "",
        dashed: bool = False,
        colour_offset: int = 0,
    ) -> None:
        """Draw (or update) every column of one run; ``run`` prefixes the legend."""
        xname, x = x_axis(columns)
        for plot in self.plots.values():
            plot.setLabel("bottom", xname)
        names = [n for n in columns if n not in X_COLUMNS and not n.endswith("_t")]
        for i, name in enumerate(sorted(names)):
            y = np.asarray(columns[name], dtype=float)
            xs = np.arange(len(y)) if x is None else np.asarray(x, dtype=float)[: len(y)]
            y = y[: len(xs)]
            # Accuracies are measured every k epochs (NaN between): join the measured points.
            # A log axis cannot show zeros (no skipped batches yet): leave them out there.
            # A loss stays NaN where a whole epoch was skipped: a gap tells the truth.
            kind = kind_of(name)
            if kind != "loss":
                keep = np.isfinite(y) & ((y > 0) if kind == "cost" else True)
                xs, y = xs[keep], y[keep]
            key = (run, name)
            curve = self._curves.get(key)
            if curve is None:
                colour = PALETTE[(i + colour_offset) % len(PALETTE)]
                style = Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
                pen = pg.mkPen(colour, width=2, style=style)
                plot = self.plots[kind_of(name)]
                label = f"{run}: {name}" if run else name
                curve = plot.plot(
                    pen=pen,
                    name=label,
                    symbol="o" if len(y) < 50 else None,
                    symbolSize=4,
                    symbolBrush=colour,
                    symbolPen=None,
                )
                self._curves[key] = curve
            curve.setData(xs, y)
            if len(y) > THIN_ABOVE_POINTS and curve.opts["pen"].widthF() > 1:
                pen = pg.mkPen(curve.opts["pen"])
                pen.setWidthF(1.0)
                curve.setPen(pen)
        self.updates += 1
        self._update_visibility()

    def add_camera_frame(self, header: dict[str, Any]) -> None:
        """One live thumbnail's statistics (mean, peak) onto the camera-signal plot."""
        levels = header.get("levels")
        if not levels:
            return
        t = float(header.get("t") or time.time())
        if not self._signal:
            self._t0 = t
        mean = float(header.get("mean", levels[0]))
        self._signal.append((t - self._t0, mean, float(levels[1])))
        del self._signal[:-SIGNAL_POINTS]
        self._full_scale_value = header.get("full_scale")
        self._signal_dirty = True
        if len(self._signal) == 1:
            self._draw_signal()
            self._update_visibility()

    def _draw_signal(self) -> None:
        if not self._signal_dirty or not self._signal:
            return
        self._signal_dirty = False
        data = np.asarray(self._signal)
        self.mean_curve.setData(data[:, 0], data[:, 1])
        self.max_curve.setData(data[:, 0], data[:, 2])
        if self._full_scale_value:
            self.full_scale.setValue(self._full_scale_value)
            self.full_scale.setVisible(True)
