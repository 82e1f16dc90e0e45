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

Notifications have no reader to ask for a language: they are written in the explorer's
(`KANSOKU_EXPLORER_LANGUAGE`, else `KANSOKU_LANG`, else English). An e-mail is written in
it whole (its subject stays Alertmanager's, for mail filters). A webhook's payload keeps
its English `summary` and `resolution` annotations, which programs read, and adds them
in the explorer's language as `summary_<language>` and `resolution_<language>` (e.g.
`summary_ja`) when that is not English.
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
from kansoku.explorer.alerts.texts import say
from kansoku.kit.i18n import DEFAULT_LANGUAGE, N_, Language, translated_in

logger = logging.getLogger("kansoku.explorer.notify")

#: Alertmanager's "not ended yet".
_NO_END = "0001-01-01T00:00:00Z"

#: The words of an e-mail: the states an alert is sent in, the default rules'
#: severities (a rules file's own are written as they are), and the links' names.
_STATE_WORDS = {AlertState.FIRING: N_("Firing"), AlertState.RESOLVED: N_("Resolved")}
_SEVERITY_WORDS = {"critical": N_("critical"), "warning": N_("warning"), "info": N_("info")}
_LINK_WORDS = {"service": N_("service"), "traces": N_("traces"), "logs": N_("error logs"),
               "example_trace": N_("example trace"), "slos": N_("SLOs")}


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
                 language: Language = DEFAULT_LANGUAGE, timeout_seconds: float = 5.0,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.public_url = public_url.rstrip("/")
        #: What the notifications are written in (see the module's doc).
        self.language = language
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

    def _summary(self, alert: AlertRow, language: Language) -> str:
        texts = alert.texts
        return say(texts.summary, language) if texts and texts.summary else alert.summary

    def _resolution(self, alert: AlertRow, language: Language) -> str | None:
        """Why a resolved alert resolved (None for any other)."""
        if alert.state != AlertState.RESOLVED:
            return None
        texts = alert.texts
        if texts and texts.reason:
            return say(texts.reason, language)
        kept: str | None = alert.details.get("resolution")
        return kept

    def _alert(self, alert: AlertRow) -> dict[str, Any]:
        links = alert.details.get("links", {})
        annotations = {"summary": self._summary(alert, Language.ENGLISH),
                       **{f"{name}_url": self._link(path) for name, path in links.items()}}
        resolution = self._resolution(alert, Language.ENGLISH)
        if resolution:
            annotations["resolution"] = resolution
        if self.language != Language.ENGLISH:
            annotations[f"summary_{self.language}"] = self._summary(alert, self.language)
            resolution = self._resolution(alert, self.language)
            if resolution:
                annotations[f"resolution_{self.language}"] = resolution
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
        """A plain-text e-mail in the explorer's language: one paragraph per alert with
        its summary and links."""
        assert receiver.email is not None
        firing = [a for a in alerts if a.state == AlertState.FIRING]
        group = ", ".join(f"{name}={alerts[0].labels.get(name, '')}" for name in group_by)
        names = ", ".join(sorted({a.rule for a in alerts}))
        status = f"FIRING:{len(firing)}" if firing else "RESOLVED"
        message = EmailMessage()
        message["Subject"] = f"[{status}] {names} ({group})"
        message["From"] = receiver.email.from_
        message["To"] = ", ".join(receiver.email.to)
        language = self.language

        def word(text: str) -> str:
            return translated_in(language, text)

        paragraphs = []
        for alert in sorted(alerts, key=lambda a: (a.state != AlertState.FIRING, a.rule)):
            severity = alert.labels.get("severity", "warning")
            lines = [word(N_("{state} {rule} ({severity}) since {time}")).format(
                state=word(_STATE_WORDS.get(alert.state, alert.state)).upper(),
                rule=alert.rule, time=_iso(alert.since_ns),
                severity=word(_SEVERITY_WORDS[severity]) if severity in _SEVERITY_WORDS
                else severity), self._summary(alert, language)]
            resolution = self._resolution(alert, language)
            if resolution:
                lines.append(word(N_("Resolved: {resolution}")).format(resolution=resolution))
            for name, path in alert.details.get("links", {}).items():
                shown = word(_LINK_WORDS[name]) if name in _LINK_WORDS else name
                lines.append(f"  {shown}: {self._link(path)}")
            paragraphs.append("\n".join(lines))
        paragraphs.append(word(N_("Every alert: {url}")).format(url=self._link("/alerts")))
        message.set_content("\n\n".join(paragraphs) + "\n")
        return message
