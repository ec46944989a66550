"""The drivers' measurement listeners (labpnn.data_hooks): never in the measurement's way."""

from __future__ import annotations

import logging

from labpnn.data_hooks import DataHooks


def test_a_broken_listener_is_logged_once_and_the_others_still_hear(caplog):
    hooks, heard = DataHooks(), []
    assert not hooks  # nobody listens: a driver may skip building the payload

    def broken(kind, payload):
        raise RuntimeError("viewer gone")

    hooks.add(broken)
    hooks.add(lambda kind, payload: heard.append(kind))
    with caplog.at_level(logging.WARNING, logger="labpnn.data_hooks"):
        for _ in range(3):
            hooks("frame", None)
    assert heard == ["frame"] * 3
    assert [r.getMessage().count("viewer gone") for r in caplog.records] == [1]
    hooks.remove(broken)
    hooks.remove(broken)  # twice: no error
    hooks("frame", None)
    assert heard == ["frame"] * 4 and hooks


def test_a_listener_removed_during_a_call_does_not_hide_the_next_one():
    hooks, heard = DataHooks(), []

    def once(kind, payload):
        heard.append("once")
        hooks.remove(once)

    hooks.add(once)
    hooks.add(lambda kind, payload: heard.append("second"))
    hooks("frame", None)
    assert heard == ["once", "second"]
