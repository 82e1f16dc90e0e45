"""Notifications to a real webhook receiver (an HTTP server in the test) and a real SMTP
server (aiosmtpd): one notification per group, no repeat before the repeat interval,
and the resolution; in the explorer's language beside the English."""

from __future__ import annotations

import email
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller

from kansoku.explorer.alerts.evaluator import AlertEvaluator
from kansoku.explorer.alerts.notify import Notifier
from kansoku.explorer.alerts.rules import default_rules_text
from kansoku.explorer.slos.budget import burn
from kansoku.explorer.store import TelemetryStore
from kansoku.kit.i18n import Language
from tests.explorer.alerts.alerting import S, write_requests
from tests.support import free_ports


@dataclass
class Webhook:
    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    received = Webhook(f"http://127.0.0.1:{server.server_address[1]}/alerts")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            body = json.loads(self.rfile.read(length))
            if received.status == 200:
                received.bodies.append(body)
            self.send_response(received.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield received
    server.shutdown()
    server.server_close()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[_Inbox, int]]:
    inbox = _Inbox()
    (port,) = free_ports(1)
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


RULES = """
rules:
  - name: HighErrorRate
    kind: error_rate
    window: 1m
    threshold: 0.05
    min_requests: 20
    labels: {{severity: critical}}
    summary: "{{service}} failed {{value}}"
  - name: SlowResponses
    kind: latency
    window: 1m
    threshold: 1s
    min_requests: 20
    labels: {{severity: warning}}
    summary: "{{service}} is slow"
notifications:
  group_by: [service]
  group_interval: 30s
  repeat_interval: 4h
  receivers:
    - name: on-call
      webhook: {{url: "{url}"}}
    - name: ops-mail
      email: {{to: [ops@kansoku.local], host: 127.0.0.1, port: {port}}}
    - name: critical-only
      webhook: {{url: "{url}"}}
      match: {{severity: critical}}
      send_resolved: false
"""


async def test_groups_are_notified_once_then_resolved_without_repeats(
        tmp_path: Path, webhook: Webhook, mailbox: tuple[_Inbox, int]) -> None:
    inbox, port = mailbox
    path = tmp_path / "alerts.yaml"
    path.write_text(RULES.format(url=webhook.url, port=port))
    store = TelemetryStore(":memory:")
    now = time.time_ns()
    clock = [now]
    notifier = Notifier(public_url="http://explorer.test:8800", smtp_host="127.0.0.1",
                        smtp_port=1, clock=lambda: clock[0])
    evaluator = AlertEvaluator(store, str(path), burn=burn, notifier=notifier)
    config = evaluator.rules.notifications
    try:
        # payments fails and is slow: two alerts, one group.
        write_requests(store, service="payments", route="/payments", start_ns=now - 30 * S,
                       count=30, failed=30, ms=1500)
        evaluator.evaluate(now)
        assert await notifier.notify(evaluator, config) == 3
        first, critical = webhook.bodies
        assert first["status"] == "firing" and first["receiver"] == "on-call"
        assert first["groupLabels"] == {"service": "payments"}
        assert first["commonLabels"] == {"service": "payments"}
        assert sorted(a["labels"]["alertname"] for a in first["alerts"]) == [
            "HighErrorRate", "SlowResponses"]
        failing = next(a for a in first["alerts"]
                       if a["labels"]["alertname"] == "HighErrorRate")
        assert failing["annotations"]["summary"] == "payments failed 100.0 %"
        assert failing["annotations"]["service_url"] == (
            "http://explorer.test:8800/services/payments")
        assert failing["endsAt"] == "0001-01-01T00:00:00Z" and failing["status"] == "firing"
        assert [a["labels"]["alertname"] for a in critical["alerts"]] == ["HighErrorRate"]
        (mail,) = inbox.messages
        assert mail["Subject"] == "[FIRING:2] HighErrorRate, SlowResponses (service=payments)"
        assert mail["To"] == "ops@kansoku.local"
        payload = mail.get_payload(decode=True)
        assert isinstance(payload, bytes)
        body = payload.decode()
        assert "payments failed 100.0 %" in body and "payments is slow" in body
        assert "http://explorer.test:8800/traces?service=payments" in body

        # Still firing, nothing new: no notification, a minute or three hours on.
        for later in (60 * S, 3 * 3600 * S):
            clock[0] = now + later
            evaluator.evaluate(now + 1 * S)
            assert await notifier.notify(evaluator, config) == 0
        assert len(webhook.bodies) == 2 and len(inbox.messages) == 1

        # Past the repeat interval: the group once more.
        clock[0] = now + 4 * 3600 * S + S
        evaluator.evaluate(now + 1 * S)
        assert await notifier.notify(evaluator, config) == 3
        assert len(webhook.bodies) == 4 and len(inbox.messages) == 2

        # The fault is over: the window empties, both alerts resolve, one notification
        # per receiver that wants resolutions.
        clock[0] += 60 * S
        evaluator.evaluate(now + 200 * S)
        assert {a.state for a in evaluator.alerts.values()} == {"resolved"}
        assert await notifier.notify(evaluator, config) == 2
        resolved = webhook.bodies[-1]
        assert resolved["status"] == "resolved" and len(resolved["alerts"]) == 2
        assert all(a["endsAt"] != "0001-01-01T00:00:00Z" for a in resolved["alerts"])
        assert inbox.messages[-1]["Subject"].startswith("[RESOLVED] ")
        clock[0] += 3600 * S
        assert await notifier.notify(evaluator, config) == 0
    finally:
        store.close()


async def test_a_failed_delivery_is_tried_again(tmp_path: Path, webhook: Webhook) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(f"""
rules:
  - {{name: HighErrorRate, kind: error_rate, window: 1m, min_requests: 20}}
notifications:
  receivers: [{{name: hook, webhook: {{url: "{webhook.url}"}}}}]
""")
    store = TelemetryStore(":memory:")
    now = time.time_ns()
    notifier = Notifier(public_url="http://x", smtp_host="127.0.0.1", smtp_port=1,
                        clock=lambda: now)
    evaluator = AlertEvaluator(store, str(path), burn=burn, notifier=notifier)
    try:
        write_requests(store, service="cart", route="/cart", start_ns=now - 30 * S,
                       count=30, failed=30)
        evaluator.evaluate(now)
        webhook.status = 503
        assert await notifier.notify(evaluator, evaluator.rules.notifications) == 0
        assert notifier.failed == 1 and webhook.bodies == []
        webhook.status = 200
        assert await notifier.notify(evaluator, evaluator.rules.notifications) == 1
        assert [a["labels"]["service"] for a in webhook.bodies[0]["alerts"]] == ["cart"]
    finally:
        store.close()


async def test_notifications_speak_the_explorers_language_beside_the_english(
        tmp_path: Path, webhook: Webhook, mailbox: tuple[_Inbox, int]) -> None:
    """With no reader to ask, a notification is in the explorer's language
    (KANSOKU_EXPLORER_LANGUAGE, else KANSOKU_LANG): the webhook keeps its English
    annotations for programs and adds `summary_ja` / `resolution_ja`; the e-mail is
    Japanese through and through (its subject, which mail filters read, as it was)."""
    inbox, port = mailbox
    rules = yaml.safe_load(default_rules_text())  # the packaged rules: their words
    rules["notifications"]["receivers"] = [
        {"name": "on-call", "webhook": {"url": webhook.url}},
        {"name": "ops-mail", "email": {"to": ["ops@kansoku.local"], "host": "127.0.0.1",
                                       "port": port}}]
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump(rules))
    store = TelemetryStore(":memory:")
    now = time.time_ns()
    notifier = Notifier(public_url="http://explorer.test:8800", smtp_host="127.0.0.1",
                        smtp_port=1, language=Language.JAPANESE, clock=lambda: now)
    evaluator = AlertEvaluator(store, str(path), burn=burn, notifier=notifier)
    config = evaluator.rules.notifications
    try:
        write_requests(store, service="payments", route="/payments", start_ns=now - 30 * S,
                       count=30, failed=30)
        evaluator.evaluate(now)
        evaluator.evaluate(now + 10 * S)  # the packaged HighErrorRate's `for: 10s`
        assert await notifier.notify(evaluator, config) == 2
        (alert,) = webhook.bodies[0]["alerts"]
        annotations = alert["annotations"]
        assert annotations["summary"].startswith(
            "payments failed 100.0 % of its requests over the last 1m (alert above 5.0 %).")
        assert annotations["summary_ja"].startswith(
            "payments は直近 1m にリクエストの 100.0 % が失敗しました"
            "（5.0 % を超えると通知）。")  # noqa: RUF001 — Japanese parentheses are full width
        assert alert["status"] == "firing" and alert["labels"]["alertname"] == "HighErrorRate"
        (mail,) = inbox.messages
        assert mail["Subject"] == "[FIRING:1] HighErrorRate (service=payments)"
        body = _body(mail)
        assert body.startswith("発火中 HighErrorRate (重大) ")
        assert "payments は直近 1m にリクエストの 100.0 % が失敗しました" in body
        assert "  エラーログ: http://explorer.test:8800/logs?service=payments" in body
        assert "すべてのアラート: http://explorer.test:8800/alerts" in body
        assert "failed" not in body

        # No more requests: it resolves, for want of traffic — said in both.
        evaluator.evaluate(now + 200 * S)
        notifier.clock = lambda: now + 300 * S
        assert await notifier.notify(evaluator, config) == 2
        (resolved,) = webhook.bodies[-1]["alerts"]
        assert resolved["annotations"]["resolution"].startswith("No requests in the last 1m")
        assert resolved["annotations"]["resolution_ja"].startswith(
            "直近 1m にリクエストがありません。")
        body = _body(inbox.messages[-1])
        assert body.startswith("解決 HighErrorRate (重大) ")
        assert "解決: 直近 1m にリクエストがありません。" in body
    finally:
        store.close()


async def test_an_english_explorer_sends_english_alone(tmp_path: Path, webhook: Webhook
                                                       ) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text(f"""
rules:
  - {{name: HighErrorRate, kind: error_rate, window: 1m, min_requests: 20}}
notifications:
  receivers: [{{name: hook, webhook: {{url: "{webhook.url}"}}}}]
""")
    store = TelemetryStore(":memory:")
    now = time.time_ns()
    notifier = Notifier(public_url="http://x", smtp_host="127.0.0.1", smtp_port=1,
                        clock=lambda: now)
    evaluator = AlertEvaluator(store, str(path), burn=burn, notifier=notifier)
    try:
        write_requests(store, service="cart", route="/cart", start_ns=now - 30 * S,
                       count=30, failed=30)
        evaluator.evaluate(now)
        assert await notifier.notify(evaluator, evaluator.rules.notifications) == 1
        (alert,) = webhook.bodies[0]["alerts"]
        assert not [key for key in alert["annotations"] if key.endswith("_ja")]
    finally:
        store.close()


def _body(mail: Message) -> str:
    payload = mail.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()
