"""Curves of a run's scalar columns: losses, metrics, costs and the rest on separate plots.

The x axis is the first count the run records (``epoch``, ``step``, ``iteration``, ...), else
the row index. Losses, accuracies and the cumulative costs of a training run (queries,
hardware seconds, digital FLOPs, in the thousands to billions) live on such different scales
that one plot would flatten the others, hence a plot each, the costs on a log scale; the
columns' declared units say which plot (:func:`kind_of`). Used both live (fed by the SWMR
watcher) and in the run browser, where a second run's curves are drawn dashed for comparison.

Live, one more plot follows the camera signal (mean and peak counts of every
thumbnail, against the full scale), because a calibration records no curves and the
operator still wants to see saturation or a fading beam as it happens."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, QTimer
from PyQt6.QtWidgets import QGridLayout, QLabel, QWidget

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


# Which plot a column goes on follows its units, where the run file declares them
# (``describe``): fractions and correlations share the 0..1 metrics plot; counts, seconds and
# FLOPs, the cumulative costs, go on the log-scale cost plot; anything else (dB, ...) on one
# more plot, where it cannot stretch the others' scales (such columns share it).
METRIC_UNITS = ("fraction", "1 (Pearson", "1 (|Pearson")
COST_UNITS = ("count", "s", "FLOP")
# Training files written before columns declared their units: the cost counters by name.
UNDESCRIBED_COST_COLUMNS = frozenset(
    {"queries", "eval_queries", "twin_queries", "hardware_s", "digital_flops", "skipped_batches",
     "bad_eval_rows", "wall_s"}
)  # fmt: skip


def is_loss(name: str) -> bool:
    lower = name.lower()
    return "loss" in lower or "error" in lower or "mse" in lower


def kind_of(name: str, units: str | None = None) -> str:
    """Which plot a column goes on: ``loss``, ``metric``, ``cost`` or ``other``."""
    if is_loss(name):
        return "loss"
    if units:
        if units.startswith(METRIC_UNITS):
            return "metric"
        return "cost" if units.split(" ", 1)[0] in COST_UNITS else "other"
    return "cost" if name in UNDESCRIBED_COST_COLUMNS else "metric"


class CountAxis(pg.AxisItem):
    """An x axis for epochs, iterations and rows: ticks on whole numbers only."""

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:
        levels = [
            (spacing, [v for v in values if float(v).is_integer()])
            for spacing, values in super().tickValues(minVal, maxVal, size)
            if spacing >= 1
        ]
        if not levels and maxVal - minVal < 100:  # zoomed in below one step: the few counts
            levels = [(1.0, [float(v) for v in range(math.ceil(minVal), math.floor(maxVal) + 1)])]
        return levels


class CurvesView(QWidget):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.updates = 0

        def plot(title: str) -> pg.PlotWidget:
            return pg.PlotWidget(title=title, axisItems={"bottom": CountAxis("bottom")})

        self.loss_plot = plot("loss")
        self.metric_plot = plot("metrics")
        self.cost_plot = plot("cost (log scale)")
        self.cost_plot.setLogMode(y=True)
        self.other_plot = plot("other")
        self.signal_plot = pg.PlotWidget(title="camera signal")
        self.plots = {
            "loss": self.loss_plot, "metric": self.metric_plot, "cost": self.cost_plot,
            "other": self.other_plot,
        }  # fmt: skip
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
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(2, 2, 2, 2)
        self.grid.addWidget(self.empty, 0, 0, 1, 2)
        self._placed: list[QWidget] = []
        self._arrange([*self.plots.values(), self.signal_plot])  # parents them to the view
        self._curves: dict[tuple[str, str], pg.PlotDataItem] = {}
        self._kinds: dict[tuple[str, str], str] = {}  # the plot each curve is on
        self._bands: dict[tuple[str, str], tuple[Any, ...]] = {}  # key -> (low, high, fill)
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
        for key, items in self._bands.items():
            for item in items:
                self.plots[self._kinds[key]].removeItem(item)
        self._bands.clear()
        self._curves.clear()
        self._kinds.clear()
        self._signal.clear()
        self.mean_curve.setData([], [])
        self.max_curve.setData([], [])
        self.full_scale.setVisible(False)
        self._update_visibility()

    def _update_visibility(self) -> None:
        kinds = set(self._kinds.values())
        for kind, plot in self.plots.items():
            plot.setVisible(kind in kinds)
        self._link_x([plot for kind, plot in self.plots.items() if kind in kinds])
        self.signal_plot.setVisible(bool(self._signal))
        self.empty.setVisible(not (kinds or self._signal))
        self._arrange([w for w in (*self.plots.values(), self.signal_plot) if w.isVisibleTo(self)])

    def _arrange(self, shown: list[QWidget]) -> None:
        """Up to 3 plots one above the other; more in two columns, so none is squeezed to a
        strip (an optical run beside the camera and SLM docks shows up to 5)."""
        if shown == self._placed:
            return
        for widget in self._placed:
            self.grid.removeWidget(widget)
        columns = 1 if len(shown) <= 3 else 2
        for i, widget in enumerate(shown):
            self.grid.addWidget(widget, i // columns, i % columns)
        for row in range(self.grid.rowCount()):
            self.grid.setRowStretch(row, 1 if row < -(-len(shown) // columns) else 0)
        for column in range(2):  # two columns of equal width, not sized by their legends
            self.grid.setColumnStretch(column, 1 if column < columns else 0)
        self._placed = shown

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
        units: dict[str, str] | None = None,
    ) -> None:
        """Draw (or update) every column of one run; ``run`` prefixes the legend.

        ``units`` (``{column: units}``) choose each column's plot (:func:`kind_of`); they may
        arrive a refresh after the column's first rows, and the curve then moves.
        """
        units = units or {}
        xname, x = x_axis(columns)
        for plot in self.plots.values():
            plot.setLabel("bottom", xname)
        names = [n for n in columns if n not in X_COLUMNS and not n.endswith("_t")]
        # ``X_std`` beside ``X`` is drawn as a band around X, not as a curve of its own (on
        # the same plot, a spread of 0.002 would stretch a 0..1 scale down to it)
        spreads = {n for n in names if n.endswith("_std") and n.removesuffix("_std") in names}
        for i, name in enumerate(sorted(n for n in names if n not in spreads)):
            y = np.asarray(columns[name], dtype=float)
            xs = np.arange(len(y)) if x is None else np.asarray(x, dtype=float)[: len(y)]
            y = y[: len(xs)]
            spread = None
            if f"{name}_std" in spreads:
                spread = np.full(len(y), np.nan)
                std = np.asarray(columns[f"{name}_std"], dtype=float)[: len(y)]
                spread[: len(std)] = std
            # Accuracies are measured every k epochs (NaN between): join the measured points.
            # A log axis cannot show zeros (no skipped batches yet): leave them out there.
            # A loss stays NaN where a whole epoch was skipped: a gap tells the truth.
            kind = kind_of(name, units.get(name))
            if kind != "loss":
                keep = np.isfinite(y) & ((y > 0) if kind == "cost" else True)
                xs, y = xs[keep], y[keep]
                spread = None if spread is None else spread[keep]
            key = (run, name)
            curve = self._curves.get(key)
            if curve is not None and self._kinds[key] != kind:
                self._remove(key)
                curve = None
            if curve is None:
                colour = PALETTE[(i + colour_offset) % len(PALETTE)]
                style = Qt.PenStyle.DashLine if dashed else Qt.PenStyle.SolidLine
                pen = pg.mkPen(colour, width=2, style=style)
                plot = self.plots[kind]
                label = f"{run}: {name}" if run else name
                if kind == "other" and units.get(name):
                    label = f"{label} ({units[name]})"
                if spread is not None:
                    label = f"{label} ± std"
                curve = plot.plot(
                    pen=pen,
                    name=label,
                    symbol="o" if len(y) < 50 else None,
                    symbolSize=4,
                    symbolBrush=colour,
                    symbolPen=None,
                )
                self._curves[key] = curve
                self._kinds[key] = kind
            curve.setData(xs, y)
            if spread is not None:
                self._band(key, curve, xs, y, spread)
            if len(y) > THIN_ABOVE_POINTS and curve.opts["pen"].widthF() > 1:
                pen = pg.mkPen(curve.opts["pen"])
                pen.setWidthF(1.0)
                curve.setPen(pen)
        self.updates += 1
        self._update_visibility()

    def _band(self, key: tuple[str, str], curve: Any, xs: Any, y: Any, spread: Any) -> None:
        """Shade ``y ± spread`` behind ``curve`` (where the spread is known)."""
        plot = self.plots[self._kinds[key]]
        if key not in self._bands:
            colour = pg.mkColor(curve.opts["pen"].color())
            colour.setAlpha(60)
            edges = (pg.PlotDataItem(pen=pg.mkPen(colour)), pg.PlotDataItem(pen=pg.mkPen(colour)))
            fill = pg.FillBetweenItem(*edges, brush=pg.mkBrush(colour))
            for item in (*edges, fill):
                plot.addItem(item)
            fill.setZValue(curve.zValue() - 1)
            self._bands[key] = (*edges, fill)
        low, high, _ = self._bands[key]
        known = np.isfinite(spread)
        low.setData(xs[known], (y - spread)[known])
        high.setData(xs[known], (y + spread)[known])

    def _remove(self, key: tuple[str, str]) -> None:
        curve, plot = self._curves.pop(key), self.plots[self._kinds.pop(key)]
        for item in (curve, *self._bands.pop(key, ())):
            plot.removeItem(item)
        legend = plot.plotItem.legend
        if legend is not None:
            legend.removeItem(curve)

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
