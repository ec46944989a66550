"""What a person sees of a training run's columns: losses, accuracies and costs apart."""

from __future__ import annotations

import numpy as np

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
