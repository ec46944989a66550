"""Telling people: a hook on failed, missed or crashed runs, and a morning summary.

Nobody watches the lab at 02:00, so a run that did not complete must reach a person
by the morning. The configuration lives in the state directory as ``notify.yaml``
(or the file named by ``LABPNN_NOTIFY_CONFIG``)::

    events: [failed, missed, crashed, aborted]   # which outcomes to report at once
    command: [/usr/local/bin/lab-alert, --channel, pnn-lab]   # argv, never a shell
    email:
      host: smtp.example.org
      port: 587
      starttls: true
      from: labpnn@example.org
      to: [night-owl@example.org]
      username: labpnn                # optional
      password_env: LABPNN_SMTP_PASSWORD   # the password itself never goes in the file
    summary_cron: "30 7 * * *"        # morning summary; null switches it off
    command_timeout_s: 60

``LABPNN_NOTIFY_COMMAND`` (a command line, split like a shell would but never run by
one) adds a command hook without a file. The command gets the event as JSON on its
standard input and as ``LABPNN_EVENT_*`` environment variables, so a ten-line script
can forward it to a chat, a pager or a log.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labpnn import paths
from labpnn.errors import ConfigError

log = logging.getLogger("labpnn.notify")

DEFAULT_ON = ("failed", "missed", "crashed", "aborted")


@dataclass
class EmailConfig:
    host: str
    to: list[str]
    sender: str
    port: int = 25
    starttls: bool = False
    ssl: bool = False
    username: str | None = None
    password_env: str | None = None
    timeout_s: float = 30.0


@dataclass
class NotifyConfig:
    on: tuple[str, ...] = DEFAULT_ON
    command: list[str] | None = None
    email: EmailConfig | None = None
    summary_cron: str | None = "30 7 * * *"
    command_timeout_s: float = 60.0
    source: str = "defaults"

    @property
    def has_hooks(self) -> bool:
        return bool(self.command or self.email)


def config_path() -> Path:
    env = os.environ.get("LABPNN_NOTIFY_CONFIG")
    return Path(env) if env else paths.state_dir() / "notify.yaml"


def load_config(path: str | os.PathLike | None = None) -> NotifyConfig:
    """Read ``notify.yaml`` (absent means: no hooks, summary at 07:30 into the log)."""
    import yaml

    path = Path(path) if path else config_path()
    raw: dict[str, Any] = {}
    if path.exists():
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: malformed YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the notification config must be a mapping")
    cfg = NotifyConfig(source=str(path) if path.exists() else "defaults")
    if True in raw and "events" not in raw:
        raw["events"] = raw.pop(True)  # YAML 1.1 reads a key `on:` as true
    if "events" in raw:
        on = raw["events"]
        on = [on] if isinstance(on, str) else list(on or [])
        unknown = set(on) - {"completed", *DEFAULT_ON}
        if unknown:
            raise ConfigError(
                f"{path}: 'events' lists unknown outcomes {sorted(unknown)}; use any of "
                f"completed, failed, missed, crashed, aborted"
            )
        cfg.on = tuple(on)
    command = raw.get("command")
    if isinstance(command, str):
        command = shlex.split(command)
    if command is not None and not (isinstance(command, list) and command):
        raise ConfigError(f"{path}: 'command' must be a list of arguments, e.g. [notify-send]")
    cfg.command = [str(c) for c in command] if command else None
    if os.environ.get("LABPNN_NOTIFY_COMMAND"):
        cfg.command = shlex.split(os.environ["LABPNN_NOTIFY_COMMAND"])
    if raw.get("email"):
        e = raw["email"]
        if not isinstance(e, dict) or not e.get("host") or not e.get("to"):
            raise ConfigError(f"{path}: 'email' needs at least 'host' and 'to'")
        to = [e["to"]] if isinstance(e["to"], str) else list(e["to"])
        cfg.email = EmailConfig(
            host=str(e["host"]),
            to=to,
            sender=str(e.get("from") or f"labpnn@{e['host']}"),
            port=int(e.get("port", 25)),
            starttls=bool(e.get("starttls", False)),
            ssl=bool(e.get("ssl", False)),
            username=e.get("username"),
            password_env=e.get("password_env"),
        )
    if "summary_cron" in raw:
        cfg.summary_cron = raw["summary_cron"] or None
    if cfg.summary_cron:
        from labpnn.errors import BadInput
        from labpnn.schedules import check_cron

        try:
            cfg.summary_cron = check_cron(cfg.summary_cron)
        except BadInput as exc:
            raise ConfigError(f"{path}: summary_cron: {exc}") from None
    cfg.command_timeout_s = float(raw.get("command_timeout_s", cfg.command_timeout_s))
    return cfg


@dataclass
class Notifier:
    """Delivers events through every configured hook; a broken hook never stops the lab."""

    config: NotifyConfig = field(default_factory=NotifyConfig)

    @classmethod
    def from_state_dir(cls) -> Notifier:
        return cls(load_config())

    def wants(self, status: str) -> bool:
        return status in self.config.on

    def send(self, event: dict[str, Any]) -> list[str]:
        """Deliver one event; return the problems (empty when every hook worked)."""
        problems = []
        log.info("notify: %s", event.get("subject", ""))
        if self.config.command:
            problem = self._run_command(event)
            if problem:
                problems.append(problem)
        if self.config.email:
            try:
                self._send_email(event)
            except Exception as exc:  # SMTP down: log it, the ledger still has it all
                problems.append(f"email to {', '.join(self.config.email.to)} failed: {exc}")
        for problem in problems:
            log.error("notify: %s", problem)
        return problems

    def _run_command(self, event: dict[str, Any]) -> str | None:
        env = dict(os.environ)
        for key, value in event.items():
            if isinstance(value, (str, int, float)) and value is not None:
                env[f"LABPNN_EVENT_{key.upper()}"] = str(value)
        try:
            result = subprocess.run(
                self.config.command,
                input=json.dumps(event, default=str),
                capture_output=True,
                text=True,
                timeout=self.config.command_timeout_s,
                env=env,
            )
        except FileNotFoundError:
            return f"notification command {self.config.command[0]!r} was not found"
        except subprocess.TimeoutExpired:
            return (
                f"notification command {self.config.command[0]!r} did not finish within "
                f"{self.config.command_timeout_s:g} s"
            )
        except OSError as exc:
            return f"notification command {self.config.command[0]!r} failed to start: {exc}"
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [""]
            return (
                f"notification command {self.config.command[0]!r} exited with "
                f"{result.returncode}: {tail[0]}"
            )
        return None

    def _send_email(self, event: dict[str, Any]) -> None:
        import smtplib
        from email.message import EmailMessage

        e = self.config.email
        msg = EmailMessage()
        msg["Subject"] = f"[labpnn] {event.get('subject', event.get('kind', 'event'))}"
        msg["From"] = e.sender
        msg["To"] = ", ".join(e.to)
        msg.set_content(str(event.get("body") or event.get("subject") or ""))
        smtp_cls = smtplib.SMTP_SSL if e.ssl else smtplib.SMTP
        with smtp_cls(e.host, e.port, timeout=e.timeout_s) as smtp:
            if e.starttls and not e.ssl:
                smtp.starttls()
            if e.username:
                password = os.environ.get(e.password_env or "", "")
                smtp.login(e.username, password)
            smtp.send_message(msg)


# -- what the messages say -----------------------------------------------------------------
def firing_event(firing: dict[str, Any], procedure: str = "", station: str = "") -> dict[str, Any]:
    from labpnn.schedules import local

    status = firing["status"]
    reason = firing.get("reason") or ""
    subject = f"{firing['schedule']} due {local(firing['due'])}: {status}"
    if reason and status != "completed":
        subject += f" ({reason})"
    return {
        "kind": "firing",
        "schedule": firing["schedule"],
        "procedure": procedure,
        "station": station,
        "due": local(firing["due"]),
        "status": status,
        "reason": reason,
        "run_id": firing.get("run_id") or "",
        "log": firing.get("log_path") or "",
        "subject": subject,
        "body": subject,
    }


def summary_event(
    firing_rows: list[dict[str, Any]], queue_rows: list[dict[str, Any]], since: float, until: float
) -> dict[str, Any]:
    """The morning summary: counts by outcome, then every run that did not complete."""
    from collections import Counter

    from labpnn.schedules import local

    counts = Counter(f["status"] for f in firing_rows)
    counts.update(q["state"] for q in queue_rows)
    total = len(firing_rows) + len(queue_rows)
    tally = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing ran"
    subject = f"overnight summary {local(since)} to {local(until)}: {total} runs, {tally}"
    lines = [subject, ""]
    for f in firing_rows:
        line = f"  {local(f['due'])}  {f['schedule']:<24} {f['status']:<9}"
        if f.get("run_id"):
            line += f" run {f['run_id']}"
        if f["status"] != "completed" and f.get("reason"):
            line += f"  {f['reason']}"
        lines.append(line)
    for q in queue_rows:
        lines.append(
            f"  queue #{q['id']:<4} {q['procedure']} on {q['station']}: {q['state']}"
            + (f" run {q['run_id']}" if q.get("run_id") else "")
        )
    return {
        "kind": "summary",
        "status": "summary",
        "since": local(since),
        "until": local(until),
        "counts": dict(counts),
        "subject": subject,
        "body": "\n".join(lines),
    }
