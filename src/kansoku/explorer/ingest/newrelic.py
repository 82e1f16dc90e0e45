"""The New Relic intake: a local collector endpoint the New Relic Python agent reports to.

The agent talks to its collector over HTTPS, one JSON `POST
/agent_listener/invoke_raw_method?method=NAME&run_id=…` per call (gzip or deflate past a
size): `preconnect` (which host to use), `connect` (the application's name and settings;
the answer gives a run id and the harvest settings), then every harvest
`span_event_data`, `analytic_event_data`, `custom_event_data`, `error_event_data`,
`metric_data`, … The explorer answers those calls itself (`collector_app`), on its own
TLS port (`KANSOKU_EXPLORER_NEWRELIC_PORT`, default 8443), with a certificate it makes
at start: agent 14.1 only speaks HTTPS to a collector (there is no `ssl = false` any
more), so the services set `host`/`port` to the explorer and accept that certificate
(`debug.disable_certificate_validation`, see `kit/approaches/newrelic.py`).

Why a collector endpoint and not the agent's audit log (docs/approaches.md): the agent
then runs as in production — it connects, is told its harvest cycle (every
`HARVEST_SECONDS` for events and spans, as New Relic's collector says five seconds) and
sends what it would send to New Relic, across containers and pods, with nothing shared
but a port. The audit log needs developer mode (nothing leaves the process but a file),
harvests every 60 s, and needs the file to be readable by the explorer.

What is kept:

- `span_event_data` → spans. `guid` is the span id, `traceId` the trace id (the W3C
  trace id the agent sends in `traceparent`, so a trace crossing OpenTelemetry services
  is one trace), `parentId` the parent. The entry span (`nr.entryPoint`) is the server
  span — a consumer span when its transaction is a message transaction
  (`OtherTransaction/Message/<library>/<type>/Named/<destination>`, kansoku's events) —
  `category` `http` and `datastore` spans are clients, message spans producers
  (`MessageBroker/…/Produce/Named/<destination>`), the rest internal; names and
  attributes as `_span_attributes` says. Each span gets `telemetry.source=newrelic`
  and the custom attribute `userId` also fills `enduser.id`.
- `metric_data`: the `Custom/…` metrics (`record_custom_metric`) → metric points, each
  a summary (the harvest's count and sum) without the `Custom/` prefix. The agent's own
  metrics (thousands of names a minute) are not kept: spans answer the same questions.
- `custom_event_data` (`record_custom_event`) → log records, their attributes as the
  record's, the event type as its body.
- The rest is answered and dropped (transaction and error events repeat what the spans
  hold).

The services' names come from `connect` (`app_name`): the run id the explorer hands out
stands for it. A run id the explorer does not know (it restarted) is answered 409, which
makes the agent connect again.
"""

from __future__ import annotations

import datetime
import gzip
import ipaddress
import itertools
import json
import logging
import math
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kansoku.explorer.common.spans import SpanKind, SpanStatus
from kansoku.explorer.ingest.otlp import SPAN_KINDS, STATUS_CODES, UNKNOWN_SERVICE, _SpanColumns
from kansoku.explorer.metrics.models import MetricKind, Temporality
from kansoku.explorer.store import LOGS, METRIC_POINTS, SPANS, Rows
from kansoku.kit import semconv
from kansoku.kit.approaches import Instrumentation

logger = logging.getLogger(__name__)

NEWRELIC_SOURCE = Instrumentation.NEWRELIC.value
#: The collector's path (protocol 17).
COLLECTOR_PATH = "/agent_listener/invoke_raw_method"
#: How often the agent is told to send its events and spans (New Relic's own collector
#: says 5 s too); metrics follow the agent's fixed 60 s cycle.
HARVEST_SECONDS = 5
#: Per harvest, at most this many spans, transaction, custom and error events are kept
#: by the agent (New Relic's limits are per minute: 2000 spans).
HARVEST_LIMITS = {"analytic_event_data": 2000, "custom_event_data": 2000,
                  "error_event_data": 100, "span_event_data": 2000, "log_event_data": 0}
#: The prefix of the metrics `record_custom_metric` records.
CUSTOM_METRIC_PREFIX = "Custom/"
#: The error a collector answers when the agent must connect again.
RESTART_ERROR = "NewRelic::Agent::ForceRestartException"
_DB_SYSTEMS = {"postgres": "postgresql"}
_INFO = 9  # OpenTelemetry's severity number for INFO
_KIND = {kind: SPAN_KINDS.index(kind.value) for kind in SpanKind}
_STATUS = {status: STATUS_CODES.index(status.value) for status in SpanStatus}
#: Agent attributes of a span, as the OpenTelemetry attribute they are.
_AGENT_ATTRIBUTES = {
    "http.url": semconv.URL_FULL, "http.method": semconv.HTTP_REQUEST_METHOD,
    "http.statusCode": semconv.HTTP_RESPONSE_STATUS_CODE,
    "request.method": semconv.HTTP_REQUEST_METHOD, "request.uri": semconv.URL_PATH,
    "response.status": semconv.HTTP_RESPONSE_STATUS_CODE,
    "request.headers.userAgent": semconv.USER_AGENT,
    "server.address": semconv.SERVER_ADDRESS, "peer.hostname": semconv.SERVER_ADDRESS,
    "db.statement": semconv.DB_STATEMENT, "db.system": semconv.DB_SYSTEM,
    "db.instance": "db.namespace", "db.operation": "db.operation.name",
    "db.collection": "db.collection.name", "error.class": "exception.type",
    "error.message": "exception.message",
}


#: How the agent names a message transaction and a message span (its `MessageTransaction`
#: and `MessageTrace`): the library, the kind of destination, (the operation,) the
#: destination.
_MESSAGE_TRANSACTION = re.compile(r"OtherTransaction/Message/([^/]+)/[^/]+/Named/(.+)")
_MESSAGE_SPAN = re.compile(r"MessageBroker/([^/]+)/[^/]+/([^/]+)/Named/(.+)")


class BadPayload(ValueError):
    """A collector call whose body is not what the agent sends; the message says why."""


def body_of(raw: bytes, encoding: str) -> Any:
    """The JSON of a call's body, inflated as its `Content-Encoding` says."""
    try:
        match encoding.strip().lower():
            case "gzip":
                raw = gzip.decompress(raw)
            case "deflate":
                raw = zlib.decompress(raw)
            case "" | "identity":
                pass
            case other:
                raise BadPayload(f"unknown content encoding {other}")
        return json.loads(raw)
    except (OSError, zlib.error, EOFError, ValueError, RecursionError) as exc:
        if isinstance(exc, BadPayload):
            raise
        raise BadPayload(f"body is not JSON ({type(exc).__name__})") from exc


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _events(payload: Any, what: str) -> list[Any]:
    """The event list of an `…_event_data` payload: `[run_id, {sampling}, [event, …]]`."""
    if not isinstance(payload, list) or len(payload) < 3 or not isinstance(payload[2], list):
        raise BadPayload(f"{what} is not [run id, sampling, events]")
    return payload[2]


def _span_attributes(intrinsics: dict[str, Any], user: dict[str, Any],
                     agent: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in agent.items():
        found[_AGENT_ATTRIBUTES.get(key, f"newrelic.{key}")] = value
    for key in ("category", "component", "transaction.name", "nr.entryPoint",
                "tracingVendors", "trustedParentId", "transactionId", "priority",
                "sampled", "span.kind", "peer.address"):
        if key in intrinsics:
            found[f"newrelic.{key}"] = intrinsics[key]
    for key in ("http.method", "http.url"):
        if key in intrinsics:
            found[_AGENT_ATTRIBUTES[key]] = intrinsics[key]
    if "component" in intrinsics and intrinsics.get("category") == "datastore":
        found.setdefault(semconv.DB_SYSTEM, intrinsics["component"])
    if semconv.DB_SYSTEM in found:
        # The agent's product names (`Postgres`, `Redis`), as OpenTelemetry's values.
        system = str(found[semconv.DB_SYSTEM]).lower()
        found[semconv.DB_SYSTEM] = _DB_SYSTEMS.get(system, system)
    for key, value in user.items():
        found[str(key)] = value
    if (user_id := user.get(semconv.NEWRELIC_USER_ID_ATTRIBUTE)) is not None:
        found[semconv.ENDUSER_ID] = str(user_id)
    return found


def span_rows(payload: Any, service: str) -> Rows:
    """The spans of one `span_event_data` call from `service`'s agent."""
    rows = Rows(SPANS)
    columns = _SpanColumns(rows, NEWRELIC_SOURCE)
    for event in _events(payload, "span_event_data"):
        if not (isinstance(event, list) and len(event) == 3
                and all(isinstance(part, dict) for part in event)):
            raise BadPayload("a span event is not [intrinsics, user, agent attributes]")
        intrinsics, user, agent = event
        start_ms, seconds = _number(intrinsics.get("timestamp")), _number(
            intrinsics.get("duration"))
        if start_ms is None or seconds is None:
            raise BadPayload("a span event has no timestamp or duration")
        start = round(start_ms * 1_000_000)
        end = start + round(seconds * 1_000_000_000)
        found = _span_attributes(intrinsics, user, agent)
        category = intrinsics.get("category")
        name = str(intrinsics.get("name") or "span")
        consumed = _MESSAGE_TRANSACTION.fullmatch(str(intrinsics.get("transaction.name", "")))
        published = _MESSAGE_SPAN.fullmatch(name)
        if intrinsics.get("nr.entryPoint"):
            kind = SpanKind.CONSUMER if consumed else SpanKind.SERVER
        elif category in ("http", "datastore") or intrinsics.get("span.kind") == "client":
            kind = SpanKind.CLIENT
        elif intrinsics.get("span.kind") == "producer":
            kind = SpanKind.PRODUCER
        elif intrinsics.get("span.kind") == "consumer":
            kind = SpanKind.CONSUMER
        else:
            kind = SpanKind.INTERNAL
        method, path = found.get(semconv.HTTP_REQUEST_METHOD), found.get(semconv.URL_PATH)
        if kind == SpanKind.SERVER and method and path:
            # The agent names the entry span after its transaction (WebTransaction/Uri/…
            # or the route's function); the span is named as a server span is.
            found["newrelic.name"] = name
            name = f"{method} {path}"
        elif intrinsics.get("nr.entryPoint") and consumed:
            # An event's handling, named as OpenTelemetry names a consumer span.
            found["newrelic.name"] = name
            found.setdefault(semconv.MESSAGING_SYSTEM, consumed[1].lower())
            found.setdefault(semconv.MESSAGING_DESTINATION, consumed[2])
            name = f"{consumed[2]} process"
        elif published and published[2].lower() == "produce":
            found["newrelic.name"] = name
            found.setdefault(semconv.MESSAGING_SYSTEM, published[1].lower())
            found.setdefault(semconv.MESSAGING_DESTINATION, published[3])
            name = f"{published[3]} publish"
        message = None
        if "exception.type" in found:
            message = f"{found['exception.type']}: {found.get('exception.message', '')}"
        status_code = found.get(semconv.HTTP_RESPONSE_STATUS_CODE)
        failed = message is not None or (
            kind == SpanKind.SERVER and str(status_code).isdigit() and int(str(status_code)) >= 500)
        resource = json.dumps({semconv.SERVICE_NAME: service,
                               semconv.TELEMETRY_SOURCE: NEWRELIC_SOURCE},
                              separators=(",", ":"))
        columns.add(service, resource, str(intrinsics.get("traceId", "")).lower(),
                    str(intrinsics.get("guid", "")).lower(),
                    str(intrinsics["parentId"]).lower() if intrinsics.get("parentId") else None,
                    name, _KIND[kind], start, end,
                    _STATUS[SpanStatus.ERROR if failed else SpanStatus.UNSET], message, found,
                    None, None)
    return rows


def metric_rows(payload: Any, service: str) -> Rows:
    """The custom metrics of one `metric_data` call: `[run_id, start, end, [[{name,
    scope}, [count, total, exclusive, min, max, sum of squares]], …]]`."""
    if not isinstance(payload, list) or len(payload) < 4 or not isinstance(payload[3], list):
        raise BadPayload("metric_data is not [run id, start, end, metrics]")
    end = _number(payload[2])
    if end is None:
        raise BadPayload("metric_data has no end time")
    rows = Rows(METRIC_POINTS)
    for entry in payload[3]:
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], dict)
                and isinstance(entry[1], list) and len(entry[1]) >= 2):
            raise BadPayload("a metric is not [{name, scope}, [count, total, …]]")
        name = str(entry[0].get("name", ""))
        if not name.startswith(CUSTOM_METRIC_PREFIX) or entry[0].get("scope"):
            continue
        count, total = _number(entry[1][0]), _number(entry[1][1])
        if count is None or total is None:
            raise BadPayload("a metric's count or total is not a number")
        rows.add(METRIC_POINTS.row(
            time_ns=round(end * 1_000_000_000), service=service,
            name=name.removeprefix(CUSTOM_METRIC_PREFIX), kind=MetricKind.SUMMARY, unit="",
            attributes=json.dumps({semconv.TELEMETRY_SOURCE: NEWRELIC_SOURCE}), value=None,
            count=round(count), sum=total, bucket_counts=None, bounds=None,
            temporality=Temporality.DELTA, monotonic=False))
    return rows


def custom_event_rows(payload: Any, service: str) -> Rows:
    """The custom events of one `custom_event_data` call, as log records."""
    rows = Rows(LOGS)
    for event in _events(payload, "custom_event_data"):
        if not (isinstance(event, list) and len(event) >= 2
                and all(isinstance(part, dict) for part in event[:2])):
            raise BadPayload("a custom event is not [intrinsics, attributes]")
        intrinsics, attributes = event[0], event[1]
        timestamp = _number(intrinsics.get("timestamp"))
        if timestamp is None:
            raise BadPayload("a custom event has no timestamp")
        event_type = str(intrinsics.get("type", "CustomEvent"))
        rows.add(LOGS.row(
            time_ns=round(timestamp * 1_000_000), service=service, severity_number=_INFO,
            severity="INFO", body=event_type,
            trace_id=None, span_id=None,
            attributes=json.dumps({**attributes, "newrelic.event.type": event_type,
                                   semconv.TELEMETRY_SOURCE: NEWRELIC_SOURCE},
                                  separators=(",", ":"), default=str),
            resource=json.dumps({semconv.SERVICE_NAME: service}, separators=(",", ":"))))
    return rows


#: What the explorer does with each harvest call's payload.
DECODERS: dict[str, Callable[[Any, str], Rows]] = {
    "span_event_data": span_rows, "metric_data": metric_rows,
    "custom_event_data": custom_event_rows,
}


@dataclass
class Collector:
    """The collector's state: which service each run id is, and the intake's counters
    (read by tests and logs). `submit` hands rows to the store."""

    submit: Callable[[Rows], None]
    #: Where the agent is told to send the rest (its `host` setting, as it called us).
    runs: dict[str, str] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    _run_ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def connect(self, payload: Any) -> dict[str, Any]:
        settings = payload[0] if isinstance(payload, list) and payload else None
        if not isinstance(settings, dict):
            raise BadPayload("connect is not [settings]")
        names = settings.get("app_name") or [UNKNOWN_SERVICE]
        service = str(names[0] if isinstance(names, list) else names)
        run_id = f"{service}-{next(self._run_ids)}"
        self.runs[run_id] = service
        logger.info("New Relic agent of %s connected (pid %s)", service, settings.get("pid"))
        return {
            "agent_run_id": run_id, "account_id": "1", "primary_application_id": service,
            "trusted_account_key": "1", "entity_guid": f"KANSOKU-{service}",
            "application_id": service, "apdex_t": 0.5, "collect_errors": True,
            "collect_error_events": True, "collect_traces": True,
            "collect_span_events": True, "collect_analytics_events": True,
            "collect_custom_events": True, "data_report_period": 60,
            "sampling_rate": 0, "url_rules": [], "metric_name_rules": [],
            "transaction_name_rules": [], "transaction_segment_terms": [],
            "messages": [{"message": "Reporting to the kansoku explorer", "level": "INFO"}],
            "event_harvest_config": {"report_period_ms": HARVEST_SECONDS * 1000,
                                     "harvest_limits": HARVEST_LIMITS},
            "span_event_harvest_config": {"report_period_ms": HARVEST_SECONDS * 1000,
                                          "harvest_limit": HARVEST_LIMITS["span_event_data"]},
        }

    def handle(self, method: str, run_id: str | None, payload: Any, host: str) -> Any:
        """The `return_value` of one call; raises `KeyError` for an unknown run."""
        self.calls[method] = self.calls.get(method, 0) + 1
        match method:
            case "preconnect":
                return {"redirect_host": host}
            case "connect":
                return self.connect(payload)
            case "agent_settings" | "shutdown" | "get_agent_commands" | "agent_command_results":
                return []
        service = self.runs[run_id or ""]
        if (decode := DECODERS.get(method)) is not None:
            self.submit(decode(payload, service))
        return None


def collector_app(collector: Collector) -> Starlette:
    """The ASGI app answering the agent's calls (served over TLS by `listeners`)."""

    async def invoke(request: Request) -> Response:
        method = request.query_params.get("method", "")
        if not method:
            return Response("Missing method parameter", status_code=400)
        try:
            payload = body_of(await request.body(), request.headers.get("content-encoding", ""))
            answer = collector.handle(method, request.query_params.get("run_id"), payload,
                                      request.url.hostname or "")
        except KeyError:
            # An unknown run (the explorer restarted): the agent connects again.
            return JSONResponse({"exception": {"message": "unknown run, connect again",
                                               "error_type": RESTART_ERROR}},
                                status_code=409)
        except BadPayload as exc:
            if not collector.rejected.get(str(exc)):
                logger.warning("New Relic intake: ignoring %s (%s); logged once per kind",
                               method, exc)
            collector.rejected[str(exc)] = collector.rejected.get(str(exc), 0) + 1
            return Response(str(exc), status_code=400)
        return JSONResponse({"return_value": answer})

    return Starlette(routes=[Route(COLLECTOR_PATH, invoke, methods=["POST"])])


def self_signed_certificate(directory: Path, host: str) -> tuple[Path, Path]:
    """A certificate and key for the collector's TLS port, made now (valid a year). The
    agent does not check it (see the module's docstring): it only has to be TLS."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kansoku explorer")])
    now = datetime.datetime.now(datetime.UTC)
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=365))
                   .add_extension(x509.SubjectAlternativeName(names), critical=False)
                   .sign(key, hashes.SHA256()))
    certificate_file, key_file = directory / "collector.crt", directory / "collector.key"
    certificate_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return certificate_file, key_file
