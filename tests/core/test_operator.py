"""The operator role: who answers a request for a person's hands."""

import pytest

from labpnn.operator import ConnectStandard, Operator, OperatorUnavailable


class AutoCal:
    """An electronic calibration unit: connects standards by itself."""

    def __init__(self):
        self.connected = []

    def answer_operator(self, payload):
        self.connected.append((payload["standard"], payload["port"]))
        return {"done": True}


class FakeStation:
    def __init__(self, instruments, world=None):
        self.instruments = instruments
        self.world = world


def test_request_text_says_what_to_connect_where():
    assert ConnectStandard("short", port=1).text == "Connect the SHORT standard to port 1."
    assert "port 1 and port 2" in ConnectStandard("thru", 1, 2).text


def test_an_unattended_run_fails_at_once_with_a_clear_message():
    op = Operator(FakeStation({}), unattended=True)
    with pytest.raises(OperatorUnavailable, match="needs a person: Connect the SHORT"):
        op.request(ConnectStandard("short", port=1))


def test_a_station_that_can_answer_by_itself_serves_unattended_runs():
    ecal = AutoCal()
    op = Operator(FakeStation({"ecal": ecal}), unattended=True)
    answer = op.request(ConnectStandard("open", port=2))
    assert answer["answered_by"] == "station"
    assert ecal.connected == [("open", 2)]
    assert op.requests[0]["kind"] == "connect-standard"


def test_scheduled_runs_count_as_unattended():
    assert Operator.for_run(FakeStation({}), "schedule:nightly-vna").unattended
    assert not Operator.for_run(FakeStation({}), "cli").unattended
