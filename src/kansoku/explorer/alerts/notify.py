"""Telling people: the alerts that fire or resolve go to the receivers of the rules file
(`notifications:`) — webhooks (a JSON POST in Alertmanager's webhook format, so anything
that takes Alertmanager's calls takes these) and e-mail through SMTP (the stack's own
mailbox unless the receiver names a server).

Like Alertmanager:

- **grouping**: alerts with the same values of `group_by` (the service, by default) go
  out together, in one notification per receiver listing the group's firing alerts and
  those that just resolved;
- **group interval**: news (an alert that started firing or resolved) goes out at once
  for a group not notified yet, else once `group_interval` has passed since the group's
  last notification, with whatever else happened meanwhile;
- **repeat interval**: a group still firing, with nothing new, is notified again only
  after `repeat_interval` (4 h by default), so a long incident does not spam;
- **resolved notifications**: when an alert resolves, its group is told (a receiver with
  `send_resolved: false` is not).

A notification that fails (the receiver is down) is logged and tried again on the next
evaluation; a receiver that took it may then get it twice — at least once, never lost.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, Protocol

import aiosmtplib
import httpx

from kansoku.explorer.alerts.models import AlertRow, AlertState
from kansoku.explorer.alerts.rules import Notifications, Receiver

logger = logging.getLogger("kansoku.explorer.notify")

#: Alertmanager's "not ended yet".
_NO_END = "0001-01-01T00:00:00Z"


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat().replace("+00:00", "Z")


def _labels(alert: AlertRow) -> dict[str, str]:
    return {"alertname": alert.rule, **alert.labels}


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {key: value for key, value in first.items()
            if all(other.get(key) == value for other in maps[1:])}


class AlertBook(Protocol):
    """What the notifier needs of the alert evaluator (`alerts/evaluator.py`, which
    imports this module): every alert, and a way to record what the receivers were told."""

    @property
    def alerts(self) -> Mapping[str, AlertRow]: ...

    def mark_notified(self, keys: list[str], now: int) -> None:
        """The receivers were told about these alerts in their current state."""


class Notifier:
    """Sends the alerts' news to the receivers; `notify` runs after every evaluation."""

    def __init__(self, *, public_url: str, smtp_host: str, smtp_port: int,
                 timeout_seconds: float = 5.0, clock: Callable[[], int] = time.time_ns) -> None:
        self.public_url = public_url.rstrip("/")
        self.smtp_host = smtp_host
        self.smtp_port = smtp_port
        self.timeout = timeout_seconds
        self.clock = clock
        self._group_sent: dict[str, int] = {}
        self.sent = 0
        self.failed = 0

    def _group_key(self, alert: AlertRow, group_by: list[str]) -> str:
        return "{}:{" + ",".join(f'{name}="{alert.labels.get(name, "")}"'
                                 for name in group_by) + "}"

    async def notify(self, evaluator: AlertBook, config: Notifications) -> int:
        """Send what is due (see the module's doc); returns the notifications sent."""
        now = self.clock()
        groups: dict[str, list[AlertRow]] = defaultdict(list)
        for alert in evaluator.alerts.values():
            if alert.state in (AlertState.FIRING, AlertState.RESOLVED):
                groups[self._group_key(alert, config.group_by)].append(alert)
        sent = 0
        for key, members in groups.items():
            firing = [a for a in members if a.state == AlertState.FIRING]
            # Resolved without ever having been notified as firing: nothing to tell.
            quiet = [a for a in members
                     if a.state == AlertState.RESOLVED and a.notified_state is None]
            if quiet:
                evaluator.mark_notified([a.fingerprint for a in quiet], now)
            news = [a for a in members if a.notified_state != a.state and a not in quiet]
            last = self._group_sent.get(key) or max(
                (a.notified_ns or 0 for a in members), default=0) or None
            due_news = bool(news) and (last is None
                                       or now - last >= config.group_interval * 1e9)
            due_repeat = bool(firing) and last is not None and \
                now - last >= config.repeat_interval * 1e9
            if not (due_news or due_repeat):
                continue
            resolved_news = [a for a in news if a.state == AlertState.RESOLVED]
            told = firing + resolved_news
            delivered = True
            for receiver in config.receivers:
                chosen = [a for a in told if all(a.labels.get(k) == v
                                                 for k, v in receiver.match.items())
                          and (receiver.send_resolved or a.state == AlertState.FIRING)]
                if not chosen:
                    continue
                try:
                    await self._send(receiver, key, chosen, config.group_by)
                    sent += 1
                    self.sent += 1
                except Exception as exc:
                    delivered = False
                    self.failed += 1
                    logger.warning("could not notify receiver %s of %d alerts (%s): %s; "
                                   "trying again with the next evaluation", receiver.name,
                                   len(chosen), key, exc)
            if delivered:
                self._group_sent[key] = now
                evaluator.mark_notified([a.fingerprint for a in told], now)
        return sent

    async def _send(self, receiver: Receiver, key: str, alerts: list[AlertRow],
                    group_by: list[str]) -> None:
        if receiver.webhook is not None:
            payload = self.webhook_payload(receiver.name, key, alerts, group_by)
            async with httpx.AsyncClient(timeout=self.timeout) as http:
                answer = await http.post(receiver.webhook.url, json=payload)
                answer.raise_for_status()
        elif receiver.email is not None:
            message = self.email_message(receiver, alerts, group_by)
            await aiosmtplib.send(
                message, hostname=receiver.email.host or self.smtp_host,
                port=receiver.email.port or self.smtp_port, timeout=self.timeout)

    def _link(self, path: str) -> str:
        return f"{self.public_url}{path}"

    def _alert(self, alert: AlertRow) -> dict[str, Any]:
        links = alert.details.get("links", {})
        annotations = {"summary": alert.summary,
                       **{f"{name}_url": self._link(path) for name, path in links.items()}}
        if alert.state == AlertState.RESOLVED and alert.details.get("resolution"):
            annotations["resolution"] = alert.details["resolution"]
        return {
            "status": alert.state, "labels": _labels(alert), "annotations": annotations,
            "startsAt": _iso(alert.active_since_ns),
            "endsAt": _iso(alert.since_ns) if alert.state == AlertState.RESOLVED else _NO_END,
            "generatorURL": self._link("/alerts"), "fingerprint": alert.fingerprint,
            "value": alert.value,
        }

    def webhook_payload(self, receiver: str, key: str, alerts: list[AlertRow],
                        group_by: list[str]) -> dict[str, Any]:
        """Alertmanager's webhook body (version 4), plus each alert's `value`."""
        rendered = [self._alert(alert) for alert in alerts]
        return {
            "version": "4", "groupKey": key, "truncatedAlerts": 0, "receiver": receiver,
            "status": AlertState.FIRING if any(a.state == AlertState.FIRING for a in alerts)
            else AlertState.RESOLVED,
            "groupLabels": {name: alerts[0].labels.get(name, "") for name in group_by},
            "commonLabels": _common([a["labels"] for a in rendered]),
            "commonAnnotations": _common([a["annotations"] for a in rendered]),
            "externalURL": self.public_url, "alerts": rendered,
        }

    def email_message(self, receiver: Receiver, alerts: list[AlertRow],
                      group_by: list[str]) -> EmailMessage:
        """A plain-text e-mail: one paragraph per alert with its summary and links."""
        assert receiver.email is not None
        firing = [a for a in alerts if a.state == AlertState.FIRING]
        group = ", ".join(f"{name}={alerts[0].labels.get(name, '')}" for name in group_by)
        names = ", ".join(sorted({a.rule for a in alerts}))
        status = f"FIRING:{len(firing)}" if firing else "RESOLVED"
        message = EmailMessage()
        message["Subject"] = f"[{status}] {names} ({group})"
        message["From"] = receiver.email.from_
        message["To"] = ", ".join(receiver.email.to)
        paragraphs = []
        for alert in sorted(alerts, key=lambda a: (a.state != AlertState.FIRING, a.rule)):
            when = _iso(alert.since_ns)
            lines = [f"{alert.state.upper()} {alert.rule} "
                     f"({alert.labels.get('severity', 'warning')}) since {when}",
                     alert.summary]
            if alert.state == AlertState.RESOLVED and alert.details.get("resolution"):
                lines.append(f"Resolved: {alert.details['resolution']}")
            for name, path in alert.details.get("links", {}).items():
                lines.append(f"  {name.replace('_', ' ')}: {self._link(path)}")
            paragraphs.append("\n".join(lines))
        paragraphs.append(f"Every alert: {self._link('/alerts')}")
        message.set_content("\n\n".join(paragraphs) + "\n")
        return message
