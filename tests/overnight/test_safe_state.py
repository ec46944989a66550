"""The runner's ``finally`` leaves every simulated bench safe: SLM blank, RF off, audio muted."""

from __future__ import annotations

import numpy as np
import pytest

from labpnn.runner import RunRequest, execute
from labpnn.station import Station


def _state(driver) -> dict:
    state = {}
    if hasattr(driver, "last_frame"):
        state["slm_max_grey"] = int(np.max(driver.last_frame))
    if hasattr(driver, "rf_on"):
        state["rf_on"] = bool(driver.rf_on)
    if hasattr(driver, "output_level"):
        state["output_level"] = float(driver.output_level)
    return state


@pytest.mark.parametrize("station", ["optical-sim", "acoustic-sim", "microwave-sim"])
@pytest.mark.parametrize("fail", [False, True])
def test_sources_are_off_when_the_run_ends_completed_or_failed(station, fail, monkeypatch):
    seen = {}
    real_close = Station.close

    def close(self):  # look at the instruments after the safe state, before they close
        for role, driver in self.instruments.items():
            seen[role] = _state(driver)
        real_close(self)

    monkeypatch.setattr(Station, "close", close)
    outcome = execute(
        RunRequest(
            procedure="light-up", station=station, params={"fail": str(fail)}, show_progress=False
        ),
        echo=lambda line: None,
    )
    assert outcome.status == ("failed" if fail else "completed"), outcome.error
    states = {k: v for role in seen.values() for k, v in role.items()}
    expected = {
        "optical-sim": {"slm_max_grey": 0},
        "acoustic-sim": {"output_level": 0.0},
        "microwave-sim": {"rf_on": False},
    }[station]
    assert {k: states[k] for k in expected} == expected
