"""Two nights of schedules on three benches in compressed time: nothing lost, no overlap."""

from __future__ import annotations

from tests.overnight.soaking import soak


def test_two_nights_with_faults_a_busy_gui_and_restarts_lose_nothing(tmp_path):
    report = soak(tmp_path, nights=2, seed=3, restart_p=0.5)
    summary = "\n".join(report.lines())
    assert report.ok, summary
    assert report.firings >= 12, summary  # 2 nights x 3 benches x 2 nightly schedules
    assert set(report.by_status) <= {"completed", "failed", "missed", "crashed", "aborted"}
    assert report.by_status["completed"] >= 1, summary
