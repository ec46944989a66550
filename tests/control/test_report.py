"""The control report's fidelity curves read as evaluations: one point or many."""

import h5py
import numpy as np
import pytest
from matplotlib.figure import Figure

from labpnn.procedures.control.report import plot_control


def report_axes(tmp_path, iterations: list[int], queries: list[int]):
    path = tmp_path / "control.h5"
    n = len(iterations)
    with h5py.File(path, "w") as f:
        f["results/iteration"] = np.array(iterations)
        f["results/queries"] = np.array(queries)
        f["results/fidelity"] = np.linspace(0.9, 0.95, n)
        f["results/fidelity_std"] = np.full(n, 0.01)
        f["results/fidelity_p10"] = np.linspace(0.88, 0.93, n)
        f.create_group("summary").attrs["baseline_fidelity"] = 0.0
    figure = Figure(figsize=(11, 7))
    with h5py.File(path, "r") as f:
        plot_control(f, figure)
    by_label = {ax.get_xlabel(): ax for ax in figure.axes}
    return by_label["outer iteration"], by_label["hardware queries"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "iterations, queries", [([0], [232]), ([0, 1, 2, 3], [6344, 7544, 8744, 9944])]
)
def test_iteration_ticks_are_whole_evaluations_and_queries_start_at_zero(
    tmp_path, iterations, queries
):
    by_iteration, by_queries = report_axes(tmp_path, iterations, queries)
    low, high = by_iteration.get_xlim()
    # half an iteration either side, not matplotlib's ±0.04 around a lone point
    assert (low, high) == pytest.approx((iterations[0] - 0.5, iterations[-1] + 0.5))
    ticks = [t for t in by_iteration.get_xticks() if low <= t <= high]
    assert ticks == list(range(iterations[0], iterations[-1] + 1))
    q_low, q_high = by_queries.get_xlim()
    assert q_low == 0 and q_high > queries[-1]
    assert all(float(t).is_integer() for t in by_queries.get_xticks())
