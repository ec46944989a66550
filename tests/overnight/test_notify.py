"""Notification config and delivery: a command hook, e-mail, and broken hooks."""

from __future__ import annotations

import email
import json
import socketserver
import sys
import threading

import pytest

from labpnn.errors import ConfigError
from labpnn.notify import Notifier, load_config, summary_event


def test_config_from_the_state_dir_and_the_environment(lab_dirs, monkeypatch):
    _, state = lab_dirs
    assert not load_config().has_hooks  # no file: no hooks, summary at 07:30
    (state / "notify.yaml").write_text(
        "events: [failed, crashed]\ncommand: [notify-send, labpnn]\n"
        "email: {host: smtp.lab.example, to: night-owl@lab.example, port: 587, starttls: true}\n"
        "summary_cron: '0 8 * * 1-5'\n"
    )
    cfg = load_config()
    assert cfg.on == ("failed", "crashed") and cfg.command == ["notify-send", "labpnn"]
    assert cfg.email.to == ["night-owl@lab.example"] and cfg.email.starttls
    assert cfg.summary_cron == "0 8 * * 1-5"
    monkeypatch.setenv("LABPNN_NOTIFY_COMMAND", "/opt/lab/alert --room 2.14")
    assert load_config().command == ["/opt/lab/alert", "--room", "2.14"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("on: [failed, exploded]", "unknown outcomes ['exploded']"),
        ("email: {to: x@y}", "'email' needs at least 'host' and 'to'"),
        ("summary_cron: 'at dawn'", "invalid cron expression 'at dawn'"),
        ("on: [failed\n", "malformed YAML"),
    ],
)
def test_a_bad_config_is_one_clear_line(lab_dirs, text, message):
    (lab_dirs[1] / "notify.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config()


def test_a_broken_hook_is_reported_but_never_raises(tmp_path):
    notifier = Notifier(load_config())
    notifier.config.command = [sys.executable, "-c", "import sys; sys.exit('no network')"]
    problems = notifier.send({"kind": "firing", "status": "failed", "subject": "x"})
    assert problems == [
        "notification command " + repr(sys.executable) + " exited with 1: no network"
    ]
    notifier.config.command = [str(tmp_path / "missing-script")]
    assert "was not found" in notifier.send({"subject": "x"})[0]


class _SMTP(socketserver.StreamRequestHandler):
    """Just enough SMTP to receive one message."""

    def handle(self):
        self.wfile.write(b"220 lab smtp\r\n")
        data = False
        while line := self.rfile.readline():
            if data:
                if line == b".\r\n":
                    data = False
                    self.wfile.write(b"250 queued\r\n")
                else:
                    self.server.received.append(line.decode())
                continue
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.wfile.write(b"250 lab\r\n")
            elif verb == b"DATA":
                data = True
                self.wfile.write(b"354 go\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


def test_email_goes_through_the_configured_smtp_server(lab_dirs):
    server = socketserver.TCPServer(("127.0.0.1", 0), _SMTP)
    server.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        (lab_dirs[1] / "notify.yaml").write_text(
            json.dumps(
                {
                    "email": {
                        "host": "127.0.0.1",
                        "port": server.server_address[1],
                        "to": ["night-owl@lab.example"],
                        "from": "labpnn@lab.example",
                    }
                }
            )
        )
        event = summary_event(
            [
                {
                    "schedule": "tm",
                    "due": 0.0,
                    "status": "failed",
                    "reason": "watchdog: no progress for 300 s",
                    "run_id": "ab",
                }
            ],
            [],
            0.0,
            3600.0,
        )
        assert Notifier.from_state_dir().send(event) == []
    finally:
        server.shutdown()
        server.server_close()
    message = email.message_from_string("".join(server.received))
    assert message["Subject"].startswith("[labpnn] overnight summary")
    assert message["To"] == "night-owl@lab.example"
    body = message.get_payload(decode=True).decode()
    assert "1 runs, 1 failed" in body and "watchdog: no progress for 300 s" in body
