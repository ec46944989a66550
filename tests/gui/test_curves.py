"""What a person sees of a training run's columns: losses, accuracies and costs apart."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from labpnn.gui.curves_dock import CurvesView, kind_of


def test_training_columns_go_to_their_own_plots_with_gaps_joined(qtbot, tmp_path):
    view = CurvesView()
    qtbot.addWidget(view)
    view.resize(800, 700)
    view.show()
    nan = float("nan")
    view.set_columns({
        "epoch": np.arange(1, 7),
        "loss": np.linspace(1.0, 0.5, 6),
        "test_accuracy": np.array([nan, 0.6, nan, 0.8, nan, 0.9]),  # scored every 2 epochs
        "queries": np.array([1e3, 2e3, 5e3, 6e3, 9e3, 1e4]),
        "digital_flops": np.linspace(1e7, 6e7, 6),
        "skipped_batches": np.zeros(6),
    })  # fmt: skip
    names = ("loss_layer1", "test_accuracy", "hardware_s", "wall_s", "bad_eval_rows")
    assert [kind_of(n) for n in names] == ["loss", "metric", "cost", "cost", "cost"]
    assert view.loss_plot.isVisible() and view.metric_plot.isVisible()
    assert view.cost_plot.isVisible() and view.cost_plot.plotItem.ctrl.logYCheck.isChecked()
    accuracy = view._curves[("", "test_accuracy")]
    assert list(accuracy.xData) == [2, 4, 6] and list(accuracy.yData) == [0.6, 0.8, 0.9]
    skipped = view._curves[("", "skipped_batches")].yData  # a log axis shows no zeros
    assert skipped is None or len(skipped) == 0
    path = tmp_path / "curves.png"
    view.grab().save(str(path))
    assert path.stat().st_size > 5_000


def test_curves_without_a_loss_column_follow_the_data_as_it_grows(qtbot):
    """A run logging only metrics (no loss) must not be frozen at its first rows' range,
    and a run opened after another must not keep the other's x range."""
    view = CurvesView()
    qtbot.addWidget(view)
    view.resize(800, 700)
    view.show()
    view.set_columns({"epoch": np.arange(1, 4), "loss": np.ones(3), "accuracy": np.ones(3)})
    view.clear()
    view.set_columns({"signal": np.arange(2.0)})
    view.set_columns({"signal": np.arange(60.0)})
    qtbot.wait(50)  # autorange is applied on the next paint
    (x_lo, x_hi), (y_lo, y_hi) = view.metric_plot.plotItem.vb.viewRange()
    assert x_lo < 1 and x_hi >= 58, (x_lo, x_hi)
    assert y_hi >= 58, (y_lo, y_hi)


def control_columns(n=3):
    """A control run's /results: fidelities (0..1) beside dB, seconds and frame counts."""
    return {
        "iteration": np.arange(n),
        "fidelity": np.linspace(0.99, 0.995, n),
        "fidelity_std": np.full(n, 0.002),
        "fidelity_p10": np.linspace(0.98, 0.99, n),
        "mse": np.linspace(0.02, 0.01, n),
        "psnr_db": np.linspace(25.0, 28.0, n),
        "time_s": np.linspace(40.0, 80.0, n),
        "queries": np.linspace(6000, 8000, n),
    }


CONTROL_UNITS = {
    "iteration": "count", "fidelity": "1 (Pearson r)", "fidelity_std": "1 (Pearson r)",
    "fidelity_p10": "1 (Pearson r)",
    "mse": "1 (target peak = 1)", "psnr_db": "dB", "time_s": "s", "queries": "count",
}  # fmt: skip


def test_declared_units_keep_other_scales_off_the_metrics_plot(qtbot, tmp_path):
    """A control run's psnr_db (~25) and time_s (~60) flattened its fidelity (~0.99) into a
    line at 0 when every column that was not a known cost went on the metrics plot."""
    view = CurvesView()
    qtbot.addWidget(view)
    view.resize(800, 900)
    view.show()
    view.set_columns(control_columns(), units=CONTROL_UNITS)
    on = {kind: sorted(n for (_, n), k in view._kinds.items() if k == kind) for kind in view.plots}
    assert on == {
        "loss": ["mse"], "metric": ["fidelity", "fidelity_p10"], "cost": ["queries", "time_s"],
        "other": ["psnr_db"],
    }  # fmt: skip
    qtbot.wait(50)
    _, (y_lo, y_hi) = view.metric_plot.plotItem.vb.viewRange()
    assert 0.9 < y_lo and y_hi < 1.01, (y_lo, y_hi)
    # the spread is a band around its mean, not a curve at 0.002
    low, high, _ = view._bands[("", "fidelity")]
    assert np.allclose(high.yData - low.yData, 0.004)
    assert ("", "fidelity_std") not in view._curves
    assert view.other_plot.isVisible()
    legend = [item[1].text for item in view.other_plot.plotItem.legend.items]
    assert legend == ["psnr_db (dB)"]
    view.grab().save(str(tmp_path / "control-curves.png"))


def test_a_curve_moves_when_its_units_arrive_after_its_first_rows(qtbot):
    """Live, a column's units are written just after its first row, so the first look at
    the file can see rows without units."""
    view = CurvesView()
    qtbot.addWidget(view)
    view.set_columns(control_columns(1))
    assert view._kinds[("", "psnr_db")] == "metric"
    view.set_columns(control_columns(2), units=CONTROL_UNITS)
    assert view._kinds[("", "psnr_db")] == "other"
    assert all(("", "psnr_db") != key for key in view._kinds if view._kinds[key] == "metric")
    names = [item[1].text for item in view.metric_plot.plotItem.legend.items]
    assert names == ["fidelity ± std", "fidelity_p10"]
    named = [c.name() for c in view.metric_plot.plotItem.listDataItems() if c.name()]
    assert sorted(named) == ["fidelity ± std", "fidelity_p10"]  # psnr_db left this plot


def test_count_axes_tick_whole_numbers_only(qtbot):
    view = CurvesView()
    qtbot.addWidget(view)
    axis = view.metric_plot.plotItem.getAxis("bottom")
    ticks = [v for _, values in axis.tickValues(0.0, 2.0, 600) for v in values]
    assert ticks and all(float(v).is_integer() for v in ticks), ticks
    assert {0.0, 1.0, 2.0} <= set(ticks)
    plain = pg.AxisItem("bottom")  # a long run keeps pyqtgraph's own ticks
    assert axis.tickValues(0.0, 5000.0, 600) == plain.tickValues(0.0, 5000.0, 600)
