"""Report axes a person can read: whole-number counts, log scales only across decades."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

from labpnn.reports import cost_scale, count_ticks  # noqa: E402


def test_costs_within_a_decade_stay_linear_and_wider_spans_go_log():
    ax = Figure().add_subplot()
    # PAT's FLOPs: the twin fit dominates, so 20 epochs move them by 0.5 %; log ticks there
    # crowded into overlapping labels (2.066e11, 2.068e11, ...)
    cost_scale(ax, [2.065e11, 2.075e11])
    assert ax.get_xscale() == "linear"
    cost_scale(ax, [1e3, 0.0, float("nan"), 5e4])  # zeros and NaN (not evaluated) ignored
    assert ax.get_xscale() == "log"


def test_count_axes_tick_whole_numbers():
    ax = Figure().add_subplot()
    ax.plot([1, 2, 3], [0.1, 0.5, 0.9])
    count_ticks(ax.xaxis)
    ticks = [t for t in ax.get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
