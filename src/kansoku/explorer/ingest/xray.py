"""The X-Ray daemon's intake: segment documents over UDP in, span rows out.

An X-Ray SDK sends each finished segment (or a subsegment it streams on its own) to the
daemon as one UDP datagram: a header line `{"format": "json", "version": 1}`, a newline,
then the document (https://docs.aws.amazon.com/xray/latest/devguide/xray-api-sendingdata.html).
The explorer listens where the daemon would (127.0.0.1:2000 by default,
`KANSOKU_EXPLORER_XRAY_PORT`) and stores every segment and subsegment as a span, through
the same columns as OTLP (`otlp._SpanColumns`):

- Trace id: X-Ray's `1-5759e988-bd862e3fe1be46a994272793` is a version, 8 hex digits of
  epoch seconds and 24 random ones — 32 hex digits, exactly the 128 bits of a W3C trace
  id. The span's trace id is those 32 digits in order (`5759e988bd862e3fe1be46a994272793`),
  the same mapping OpenTelemetry's X-Ray propagator makes, so a trace that crosses an
  OpenTelemetry service and an X-Ray one is one trace here.
- Span id: the document's `id`; parent: its `parent_id` (a nested subsegment's parent
  is the document it is nested in).
- Kind: a segment is the server span of its service; a subsegment of namespace `remote`
  or `aws` (an outgoing call, a SQL statement) is a client span; others are internal.
  The SDK knows no messaging: the kit annotates an event's handling (a segment) and its
  publish (a subsegment) with `messaging_destination_name` (kit/approaches/xray.py),
  which make them a consumer span named `<subject> process` and a producer span.
- Service: a segment's name; a subsegment's is its segment's. A subsegment sent on its
  own names only its parent: it waits (up to `ORPHAN_SECONDS`) for a document of its
  trace that names the service, then is stored as `unknown_service`.
- `http.request`/`response` become the HTTP attributes (`url.full`, `url.path`, …),
  `sql` the `db.*` ones, each annotation an attribute of its own name (`user_id` also
  `enduser.id`, and the kit's own annotations also under the dotted names they stand
  for, `semconv.XRAY_ANNOTATION_ATTRIBUTES`), each metadata namespace
  `aws.xray.metadata.<namespace>`.
- Status: `fault` (a 5xx or an exception) is an error; `error` (4xx) and `throttle` (429)
  are kept as `aws.xray.error` / `aws.xray.throttle` with the status unset, as
  OpenTelemetry leaves a server's 4xx; the exceptions of `cause` become `exception` events.
- Every span gets `telemetry.source=xray`.

In-progress documents (`in_progress: true`, no end yet) are not stored: the complete
document, with the same id, follows. Bad datagrams are counted per kind and each kind
is logged once; the listener never stops for them.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from kansoku.explorer.common.spans import SpanKind, SpanStatus
from kansoku.explorer.ingest.documents import BadDocument, json_object
from kansoku.explorer.ingest.otlp import SPAN_KINDS, STATUS_CODES, UNKNOWN_SERVICE, _SpanColumns
from kansoku.explorer.store import SPANS, Rows
from kansoku.kit import semconv
from kansoku.kit.approaches import Instrumentation

logger = logging.getLogger(__name__)

XRAY_SOURCE = Instrumentation.XRAY.value
#: How long a subsegment sent on its own waits for a document naming its service.
ORPHAN_SECONDS = 30.0
#: The most such subsegments kept waiting (the oldest are stored first past it).
MAX_WAITING = 10_000

_TRACE_ID = re.compile(r"1-([0-9a-fA-F]{8})-([0-9a-fA-F]{24})")
_SPAN_ID = re.compile(r"[0-9a-fA-F]{16}")
_REMOTE_NAMESPACES = frozenset({"remote", "aws"})
_KIND = {kind: SPAN_KINDS.index(kind.value) for kind in SpanKind}
_STATUS = {status: STATUS_CODES.index(status.value) for status in SpanStatus}


def trace_id_of(xray_trace_id: str) -> str:
    """The 32-hex-digit trace id of an X-Ray trace id (see the module's docstring)."""
    match = _TRACE_ID.fullmatch(xray_trace_id)
    if match is None:
        raise BadDocument("trace id not of the form 1-xxxxxxxx-yyyyyyyyyyyyyyyyyyyyyyyy")
    return (match[1] + match[2]).lower()


def xray_trace_id(trace_id: str) -> str:
    """The X-Ray form of a 32-hex-digit trace id (the inverse of `trace_id_of`)."""
    return f"1-{trace_id[:8]}-{trace_id[8:]}"


def split_datagram(datagram: bytes) -> dict[str, Any]:
    """The document of one daemon datagram (header line, newline, JSON document)."""
    header, newline, body = datagram.partition(b"\n")
    if not newline:
        raise BadDocument("no header line")
    if json_object(header, "the header").get("format") != "json":
        raise BadDocument("the header does not say format json")
    return json_object(body, "the document")


def _nanoseconds(value: Any, what: str) -> int:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise BadDocument(f"{what} is not a number of seconds")
    return round(value * 1_000_000_000)


def _http_attributes(found: dict[str, Any], document: dict[str, Any]) -> None:
    http = document.get("http")
    if not isinstance(http, dict):
        return
    request = http.get("request")
    response = http.get("response")
    request = request if isinstance(request, dict) else {}
    response = response if isinstance(response, dict) else {}
    if method := request.get("method"):
        found[semconv.HTTP_REQUEST_METHOD] = str(method)
    if url := request.get("url"):
        found[semconv.URL_FULL] = str(url)
        parts = urlsplit(str(url))
        if parts.path:
            found[semconv.URL_PATH] = parts.path
        if parts.hostname:
            found[semconv.SERVER_ADDRESS] = parts.hostname
    if agent := request.get("user_agent"):
        found[semconv.USER_AGENT] = str(agent)
    if client := request.get("client_ip"):
        found[semconv.CLIENT_ADDRESS] = str(client)
    status = response.get("status")
    if isinstance(status, int) and not isinstance(status, bool):
        found[semconv.HTTP_RESPONSE_STATUS_CODE] = status


def _sql_attributes(found: dict[str, Any], sql: Any) -> None:
    if not isinstance(sql, dict):
        return
    if system := sql.get("database_type"):
        found[semconv.DB_SYSTEM] = str(system)
    if statement := sql.get("sanitized_query"):
        found[semconv.DB_STATEMENT] = str(statement)
    if user := sql.get("user"):
        found[semconv.DB_USER] = str(user)
    if url := sql.get("url"):
        found["db.connection_string"] = str(url)
    for key in ("database_version", "driver_version", "preparation"):
        if value := sql.get(key):
            found[f"aws.xray.sql.{key}"] = str(value)


def _exception_events(document: dict[str, Any], end_ns: int) -> tuple[list[dict[str, Any]],
                                                                      str | None]:
    cause = document.get("cause")
    if not isinstance(cause, dict):
        return [], None
    events: list[dict[str, Any]] = []
    for exception in cause.get("exceptions") or ():
        if not isinstance(exception, dict):
            continue
        attributes: dict[str, Any] = {
            "exception.type": str(exception.get("type", "")),
            "exception.message": str(exception.get("message", ""))}
        stack = exception.get("stack")
        if isinstance(stack, list) and stack:
            attributes["exception.stacktrace"] = "\n".join(
                f'  File "{frame.get("path")}", line {frame.get("line")}, in {frame.get("label")}'
                for frame in stack if isinstance(frame, dict))
        events.append({"time_ns": end_ns, "name": "exception", "attributes": attributes})
    if not events:
        return [], None
    first: dict[str, Any] = events[0]["attributes"]
    return events, f"{first['exception.type']}: {first['exception.message']}"


@dataclass
class _Entity:
    """One segment or subsegment, flattened out of its document."""

    document: dict[str, Any]
    parent_id: str | None
    is_segment: bool


def _entities(document: dict[str, Any], parent_id: str | None, is_segment: bool
              ) -> Iterator[_Entity]:
    yield _Entity(document, parent_id, is_segment)
    for child in document.get("subsegments") or ():
        if isinstance(child, dict):
            yield from _entities(child, str(document.get("id", "")), False)


@dataclass
class XRayDecoder:
    """Turns segment documents into span rows; keeps the subsegments sent on their own
    until their service is known (one decoder per listener: not thread-safe)."""

    #: Segment and subsegment ids seen recently, with their service.
    services: dict[str, str] = field(default_factory=dict)
    #: Subsegments sent on their own whose service is not known yet, with their arrival.
    waiting: dict[str, list[tuple[float, dict[str, Any]]]] = field(default_factory=dict)
    #: Documents not stored because they were in progress.
    in_progress: int = 0

    def decode(self, document: dict[str, Any], now: float | None = None) -> Rows:
        """The rows of one document (and of the waiting subsegments it resolves)."""
        now = time.monotonic() if now is None else now
        rows = Rows(SPANS)
        columns = _SpanColumns(rows, XRAY_SOURCE)
        trace_id = trace_id_of(str(document.get("trace_id", "")))
        is_segment = document.get("type") != "subsegment"
        if is_segment:
            service = str(document.get("name") or UNKNOWN_SERVICE)
        else:
            service = self.services.get(str(document.get("parent_id", "")), "")
        if not service:
            self.waiting.setdefault(trace_id, []).append((now, document))
            self._expire(columns, now)
            return rows
        self._store(columns, trace_id, service, document, is_segment)
        self._release(columns, trace_id, now)
        return rows

    def expire(self, now: float | None = None) -> Rows:
        """The rows of subsegments that waited too long for their service."""
        rows = Rows(SPANS)
        self._expire(_SpanColumns(rows, XRAY_SOURCE), time.monotonic() if now is None else now)
        return rows

    def _store(self, columns: _SpanColumns, trace_id: str, service: str,
               document: dict[str, Any], is_segment: bool) -> None:
        resource = _resource(service, document) if is_segment else {
            semconv.SERVICE_NAME: service, semconv.TELEMETRY_SOURCE: XRAY_SOURCE}
        resource_json = json.dumps(resource, separators=(",", ":"))
        parent = document.get("parent_id")
        for entity in _entities(document, str(parent) if parent else None, is_segment):
            span_id = str(entity.document.get("id", ""))
            if not _SPAN_ID.fullmatch(span_id):
                raise BadDocument("id is not 16 hex digits")
            self.services[span_id] = service
            if entity.document.get("in_progress"):
                self.in_progress += 1
                continue
            _add_span(columns, trace_id, service, resource_json, entity)
        if len(self.services) > 4 * MAX_WAITING:  # forget the oldest half
            for key in list(self.services)[: len(self.services) // 2]:
                del self.services[key]

    def _release(self, columns: _SpanColumns, trace_id: str, now: float) -> None:
        """Store the waiting subsegments of `trace_id` whose service is now known."""
        progress = True
        while progress and self.waiting.get(trace_id):
            progress = False
            for entry in list(self.waiting[trace_id]):
                service = self.services.get(str(entry[1].get("parent_id", "")))
                if service:
                    self.waiting[trace_id].remove(entry)
                    self._store(columns, trace_id, service, entry[1], False)
                    progress = True
        if trace_id in self.waiting and not self.waiting[trace_id]:
            del self.waiting[trace_id]
        self._expire(columns, now)

    def _expire(self, columns: _SpanColumns, now: float) -> None:
        count = sum(len(entries) for entries in self.waiting.values())
        for trace_id in list(self.waiting):
            kept = []
            for arrived, document in self.waiting[trace_id]:
                if now - arrived > ORPHAN_SECONDS or count > MAX_WAITING:
                    count -= 1
                    self._store(columns, trace_id, UNKNOWN_SERVICE, document, False)
                else:
                    kept.append((arrived, document))
            if kept:
                self.waiting[trace_id] = kept
            else:
                del self.waiting[trace_id]


def _resource(service: str, segment: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = {semconv.SERVICE_NAME: service,
                                semconv.TELEMETRY_SOURCE: XRAY_SOURCE}
    aws = segment.get("aws")
    xray = aws.get("xray") if isinstance(aws, dict) else None
    if isinstance(xray, dict):
        if sdk := xray.get("sdk"):
            resource["telemetry.sdk.name"] = str(sdk)
        if version := xray.get("sdk_version"):
            resource["telemetry.sdk.version"] = str(version)
    runtime = segment.get("service")
    if isinstance(runtime, dict):
        for key, name in (("runtime", "process.runtime.name"),
                          ("runtime_version", "process.runtime.version"),
                          ("version", semconv.SERVICE_VERSION)):
            if value := runtime.get(key):
                resource[name] = str(value)
    if origin := segment.get("origin"):
        resource["cloud.platform"] = str(origin)
    return resource


def _add_span(columns: _SpanColumns, trace_id: str, service: str, resource_json: str,
              entity: _Entity) -> None:
    document = entity.document
    start = _nanoseconds(document.get("start_time"), "start_time")
    end = _nanoseconds(document.get("end_time"), "end_time")
    found: dict[str, Any] = {}
    namespace = document.get("namespace")
    annotations = document.get("annotations")
    annotations = annotations if isinstance(annotations, dict) else {}
    destination = annotations.get(semconv.XRAY_MESSAGING_DESTINATION_ANNOTATION)
    if entity.is_segment:
        kind = SpanKind.CONSUMER if destination else SpanKind.SERVER
    elif destination:
        kind = SpanKind.PRODUCER
    elif namespace in _REMOTE_NAMESPACES:
        kind = SpanKind.CLIENT
    else:
        kind = SpanKind.INTERNAL
    if namespace:
        found["aws.xray.namespace"] = str(namespace)
    _http_attributes(found, document)
    _sql_attributes(found, document.get("sql"))
    for key, value in annotations.items():
        found[str(key)] = value
    user = annotations.get(semconv.XRAY_USER_ID_ANNOTATION)
    if user is not None:
        found[semconv.ENDUSER_ID] = str(user)
    # The kit's annotations (a trace header X-Ray could not continue, an event's
    # messaging) also under the names the other approaches' spans use.
    for annotation, attribute in semconv.XRAY_ANNOTATION_ATTRIBUTES.items():
        if annotation in annotations:
            found[attribute] = str(annotations[annotation])
    metadata = document.get("metadata")
    if isinstance(metadata, dict):
        for key, value in metadata.items():
            found[f"aws.xray.metadata.{key}"] = value
    for flag in ("error", "throttle", "fault"):
        if document.get(flag) is True:
            found[f"aws.xray.{flag}"] = True
    events, message = _exception_events(document, end)
    status = SpanStatus.ERROR if document.get("fault") is True else SpanStatus.UNSET
    name = str(document.get("name") or "")
    if not name:
        # The SDK names a SQL subsegment after the database's host, which a file or
        # socket database has not: name it after the statement, as OpenTelemetry does.
        statement = str(found.get(semconv.DB_STATEMENT, "")).split(maxsplit=1)
        name = statement[0].upper() if statement else str(namespace or "subsegment")
    method, path = found.get(semconv.HTTP_REQUEST_METHOD), found.get(semconv.URL_PATH)
    if entity.is_segment and method and path:
        # A segment is named after its service; the span after its request, as a server
        # span is. X-Ray records no route template: the path is the one requested.
        found["aws.xray.name"] = name
        name = f"{method} {path}"
    elif entity.is_segment and destination:
        # An event's handling: named as OpenTelemetry names a consumer span.
        found["aws.xray.name"] = name
        name = f"{destination} process"
    columns.add(service, resource_json, trace_id, str(document["id"]), entity.parent_id,
                name, _KIND[kind], start, end, _STATUS[status], message, found,
                events or None, None)
