"""The signal matrix — which traces, metrics and logs every service must send, with which
attributes — and the names each instrumentation approach gives those attributes.

`MATRIX` is the single source of truth: one row per service, one cell per signal, each
cell naming what must arrive and the attributes it must carry (names from
`kit.semconv`). `tests/stack/test_signal_matrix.py` checks it against a running stack on
OpenTelemetry; `benchmarks/approaches.py` measures, per approach, the share of its cells
each one fills (docs/approaches.md).

`NAMES` is the map between the approaches: for each attribute the matrix asks for, what
the AWS X-Ray SDK and the New Relic agent call it in what they send, and the attribute
under which the explorer's intake (`explorer/ingest/xray.py`, `newrelic.py`) stores it.
An approach with no such field has None: the cell stays empty whatever the load.
`tests/explorer/ingest/test_approach_names.py` feeds each vendor's field through its
intake, so the map cannot drift from what the explorer does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kansoku.kit import semconv
from kansoku.kit.approaches import Instrumentation

TRACES, METRICS, LOGS = "traces", "metrics", "logs"
#: The fields kit/logging.py writes on every log record that knows them (no semconv
#: names: they are the JSON log line's own field names, and the OTLP record's attributes).
LOG_REQUEST_ID, LOG_USER_ID = "request_id", "user_id"
#: Every log record found through its trace carries that trace's id; its span's id is a
#: column of its own.
LOG_TRACE_ID, LOG_SPAN_ID = "trace_id", "span_id"


@dataclass(frozen=True)
class Spans:
    """Spans a service must send: of these `kinds`, and (if `marker` is set) carrying
    it, at least one must carry every attribute of `attributes` (`service.name` is
    checked on every span's resource)."""

    what: str
    kinds: frozenset[str]
    attributes: tuple[str, ...]
    marker: str | None = None
    #: Only spans carrying the customer's own user id as `enduser.id` count.
    of_the_customer: bool = False


@dataclass(frozen=True)
class Records:
    """Log records a service must write: at least one with every field of `fields`."""

    what: str
    fields: tuple[str, ...]
    #: Only records carrying the customer's own user id as `user_id` count.
    of_the_customer: bool = False


@dataclass(frozen=True)
class Metric:
    """A metric the service must export, and the attributes its points carry."""

    name: str
    attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Row:
    """What one service must send, per signal."""

    traces: tuple[Spans, ...]
    metrics: tuple[Metric, ...]
    logs: tuple[Records, ...]
    #: Cells not emitted today (`"<signal>: <what>: <attribute>"`, as a failure names
    #: them), each with the reason. A gap that closes fails the test, so the table
    #: never claims less than is true.
    known_gaps: Mapping[str, str] = field(default_factory=dict)


_HTTP_SERVER = (semconv.HTTP_REQUEST_METHOD, semconv.HTTP_ROUTE,
                semconv.HTTP_RESPONSE_STATUS_CODE, semconv.URL_PATH, semconv.URL_SCHEME,
                semconv.REQUEST_ID)
SERVER = Spans("server spans", frozenset({"server"}), _HTTP_SERVER)
CUSTOMERS_REQUESTS = Spans("the customer's server spans", frozenset({"server"}),
                           (semconv.ENDUSER_ID,), of_the_customer=True)
CUSTOMERS_EVENTS = Spans("the customer's event spans", frozenset({"consumer"}),
                         (semconv.ENDUSER_ID,), of_the_customer=True)
DATABASE = Spans("database spans", frozenset({"client"}),
                 (semconv.DB_SYSTEM, semconv.DB_STATEMENT), marker=semconv.DB_SYSTEM)
PUBLISH = Spans("messaging spans (publish)", frozenset({"producer"}),
                (semconv.MESSAGING_SYSTEM, semconv.MESSAGING_DESTINATION))
PROCESS = Spans("messaging spans (process)", frozenset({"consumer"}),
                (semconv.MESSAGING_SYSTEM, semconv.MESSAGING_DESTINATION))

REQUEST_DURATION = Metric(semconv.METRIC_HTTP_SERVER_DURATION, (semconv.HTTP_ROUTE,))
PROCESS_METRICS = tuple(Metric(name) for name in semconv.RUNTIME_METRICS)

LOG_RECORDS = Records("log records", (LOG_TRACE_ID, LOG_SPAN_ID, LOG_REQUEST_ID))
CUSTOMERS_LOG_RECORDS = Records("the customer's log records",
                                (LOG_TRACE_ID, LOG_SPAN_ID, LOG_USER_ID), of_the_customer=True)


def _service(*traces: Spans, metric: str | None,
             known_gaps: Mapping[str, str] | None = None) -> Row:
    """A service's row: its spans, the metrics every service exports plus its own
    (`metric`), and log records tied to their trace, request and user."""
    own = (Metric(metric),) if metric else ()
    return Row(traces=(SERVER, *traces, DATABASE),
               metrics=(REQUEST_DURATION, *PROCESS_METRICS, *own),
               logs=(LOG_RECORDS, CUSTOMERS_LOG_RECORDS), known_gaps=known_gaps or {})


MATRIX: dict[str, Row] = {
    # The gateway's own metric counts only refusals (rate limits); its calls to the
    # services are what it does.
    "gateway": _service(CUSTOMERS_REQUESTS, metric=semconv.METRIC_HTTP_CLIENT_DURATION),
    "identity": _service(CUSTOMERS_REQUESTS, metric=semconv.METRIC_USERS_REGISTERED),
    "catalog": _service(CUSTOMERS_REQUESTS, PUBLISH, metric=semconv.METRIC_PRODUCT_VIEWS),
    "inventory": _service(CUSTOMERS_REQUESTS, PUBLISH, metric=semconv.METRIC_OUT_OF_STOCK),
    "cart": _service(CUSTOMERS_REQUESTS, metric=semconv.METRIC_CART_ADDS),
    "orders": _service(CUSTOMERS_REQUESTS, PUBLISH, metric=semconv.METRIC_ORDERS),
    "payments": _service(CUSTOMERS_REQUESTS, PROCESS, metric=semconv.METRIC_PAYMENTS),
    "worker": _service(CUSTOMERS_EVENTS, PROCESS,
                       metric=semconv.METRIC_FUNCTION_INVOCATIONS),
    "lab": _service(CUSTOMERS_REQUESTS, metric=semconv.METRIC_LAB_RUNS),
    # The pages' browser telemetry, forwarded by the gateway's intake as a service of
    # its own: key actions as client spans, events as log records, and metrics by route
    # template (no process of its own, so no process metrics).
    semconv.RUM_SERVICE: Row(
        traces=(Spans("browser spans", frozenset({"client"}),
                      (semconv.HTTP_REQUEST_METHOD, semconv.URL_PATH,
                       semconv.HTTP_RESPONSE_STATUS_CODE, semconv.RUM_ACTION,
                       semconv.SESSION_ID)),),
        metrics=(Metric(semconv.METRIC_PAGE_VIEWS),
                 Metric(semconv.METRIC_WEB_VITALS["LCP"])),
        logs=(Records("browser events", (semconv.EVENT_NAME, semconv.SESSION_ID,
                                         semconv.URL_PATH, semconv.RUM_PAGE_VIEW_ID)),),
    ),
}



# --- The approaches' names ---------------------------------------------------------------

@dataclass(frozen=True)
class VendorName:
    """How one approach records one of the matrix's attributes."""

    #: Its field or attribute in what the vendor's library sends (an X-Ray segment's
    #: JSON path, a New Relic span event's attribute).
    sent_as: str
    #: The attribute the explorer's intake stores it under.
    stored_as: str


XRAY, NEWRELIC = Instrumentation.XRAY, Instrumentation.NEWRELIC

#: Each span attribute of the matrix → approach → its name there (None: the approach
#: records no such thing). OpenTelemetry's names are the attributes themselves.
NAMES: dict[str, dict[Instrumentation, VendorName | None]] = {
    semconv.HTTP_REQUEST_METHOD: {
        XRAY: VendorName("http.request.method", semconv.HTTP_REQUEST_METHOD),
        NEWRELIC: VendorName("request.method", semconv.HTTP_REQUEST_METHOD)},
    # X-Ray records the URL; New Relic names the transaction after the route's function
    # (`WebTransaction/Function/…:get_product`), not its template.
    semconv.HTTP_ROUTE: {XRAY: None, NEWRELIC: None},
    semconv.HTTP_RESPONSE_STATUS_CODE: {
        XRAY: VendorName("http.response.status", semconv.HTTP_RESPONSE_STATUS_CODE),
        NEWRELIC: VendorName("http.statusCode", semconv.HTTP_RESPONSE_STATUS_CODE)},
    semconv.URL_PATH: {
        XRAY: VendorName("http.request.url", semconv.URL_PATH),
        NEWRELIC: VendorName("request.uri", semconv.URL_PATH)},
    # X-Ray's URL is whole, scheme included (the explorer keeps it as url.full); the
    # agent's entry span has the path alone.
    semconv.URL_SCHEME: {
        XRAY: VendorName("http.request.url", semconv.URL_FULL), NEWRELIC: None},
    # The kit's request id goes on OpenTelemetry's span only.
    semconv.REQUEST_ID: {XRAY: None, NEWRELIC: None},
    semconv.ENDUSER_ID: {
        XRAY: VendorName(f"annotations.{semconv.XRAY_USER_ID_ANNOTATION}",
                         semconv.ENDUSER_ID),
        NEWRELIC: VendorName(semconv.NEWRELIC_USER_ID_ATTRIBUTE, semconv.ENDUSER_ID)},
    semconv.DB_SYSTEM: {
        XRAY: VendorName("sql.database_type", semconv.DB_SYSTEM),
        NEWRELIC: VendorName("component", semconv.DB_SYSTEM)},
    semconv.DB_STATEMENT: {
        XRAY: VendorName("sql.sanitized_query", semconv.DB_STATEMENT),
        NEWRELIC: VendorName("db.statement", semconv.DB_STATEMENT)},
    # Neither library records NATS.
    semconv.MESSAGING_SYSTEM: {XRAY: None, NEWRELIC: None},
    semconv.MESSAGING_DESTINATION: {XRAY: None, NEWRELIC: None},
}


def stored_name(attribute: str, approach: Instrumentation) -> str | None:
    """Where the explorer keeps `attribute` for spans `approach` made (None: nowhere).
    OpenTelemetry's, and any attribute the map does not name, as it is."""
    if approach in (Instrumentation.OTEL, Instrumentation.NONE) or attribute not in NAMES:
        return attribute
    name = NAMES[attribute].get(approach)
    return name.stored_as if name is not None else None


def carries(attributes: Mapping[str, Any], attribute: str,
            approach: Instrumentation = Instrumentation.OTEL) -> bool:
    """Whether a span's `attributes` (as the explorer stores them) hold `attribute`, as
    `approach` names it."""
    stored = stored_name(attribute, approach)
    return stored is not None and stored in attributes


# --- What arrived ------------------------------------------------------------------------

@dataclass
class Evidence:
    """What the explorer holds of a test's (or a benchmark's) traffic."""

    customer_id: str
    #: Spans of the traffic's traces (the explorer's flat form: kind, attributes, resource).
    spans: list[dict[str, Any]] = field(default_factory=list)
    #: Log records: each a dict of the record's fields and attributes, with its service.
    records: list[dict[str, Any]] = field(default_factory=list)
    #: Metric name → services that exported it.
    metric_senders: dict[str, set[str]] = field(default_factory=dict)
    #: Service → metric name → attribute names its points carry.
    metric_attributes: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    #: The approach that made the spans, whose names `NAMES` gives.
    approach: Instrumentation = Instrumentation.OTEL


@dataclass(frozen=True)
class Check:
    """One rule checked for one service: its attributes found missing, and why, when
    none of them could be looked for (`none arrived`, no span of the customer's)."""

    missing: tuple[str, ...]
    why: str | None = None
    #: The span or record the attributes were looked for on (its name), when any.
    on: str | None = None


def _check_spans(service: str, rule: Spans, evidence: Evidence) -> Check:
    approach = evidence.approach
    candidates = [
        span for span in evidence.spans
        if span["service"] == service and span["kind"] in rule.kinds
        and (rule.marker is None or carries(span["attributes"], rule.marker, approach))]
    if not candidates:
        return Check(rule.attributes, "none arrived")
    if rule.of_the_customer:
        user = stored_name(semconv.ENDUSER_ID, approach)
        candidates = [span for span in candidates
                      if user and span["attributes"].get(user) == evidence.customer_id]
        if not candidates:
            return Check(rule.attributes, f"{semconv.ENDUSER_ID} (none has the customer's id)")
    unnamed = [span for span in candidates
               if span["resource"].get(semconv.SERVICE_NAME) != service]
    if unnamed:
        return Check((semconv.SERVICE_NAME,), on=unnamed[0]["name"])
    best = max(candidates, key=lambda span: sum(carries(span["attributes"], a, approach)
                                                for a in rule.attributes))
    return Check(tuple(a for a in rule.attributes
                       if not carries(best["attributes"], a, approach)), on=best["name"])


def _missing_spans(service: str, rule: Spans, evidence: Evidence) -> list[str]:
    check = _check_spans(service, rule, evidence)
    if check.why is not None:
        return [f"{rule.what}: {check.why}"]
    return [f"{rule.what}: {attribute} (on {check.on})" for attribute in check.missing]


def _check_records(service: str, rule: Records, evidence: Evidence) -> Check:
    candidates = [record for record in evidence.records if record["service"] == service]
    if not candidates:
        return Check(rule.fields, "none arrived")
    if rule.of_the_customer:
        candidates = [record for record in candidates
                      if record.get(LOG_USER_ID) == evidence.customer_id]
        if not candidates:
            return Check(rule.fields, f"{LOG_USER_ID} (none has the customer's id)")
    best = max(candidates, key=lambda record: sum(f in record for f in rule.fields))
    return Check(tuple(name for name in rule.fields if name not in best))


def _missing_records(service: str, rule: Records, evidence: Evidence) -> list[str]:
    check = _check_records(service, rule, evidence)
    if check.why is not None:
        return [f"{rule.what}: {check.why}"]
    return [f"{rule.what}: {name}" for name in check.missing]


def _check_metric(service: str, rule: Metric, evidence: Evidence) -> Check:
    if service not in evidence.metric_senders.get(rule.name, set()):
        return Check((rule.name, *rule.attributes), "none arrived")
    carried = evidence.metric_attributes.get(service, {}).get(rule.name, set())
    return Check(tuple(attribute for attribute in rule.attributes
                       if attribute not in carried))


def _missing_metric(service: str, rule: Metric, evidence: Evidence) -> list[str]:
    check = _check_metric(service, rule, evidence)
    if check.why is not None:
        return [f"{rule.name}: {check.why}"]
    return [f"{rule.name}: {attribute}" for attribute in check.missing]


def gaps(evidence: Evidence) -> tuple[list[str], list[str]]:
    """(cells missing, known gaps that are no longer missing), each as
    `"<service> <signal>: <what>: <attribute>"`."""
    missing, closed = [], []
    for service, row in MATRIX.items():
        cells = [
            *((TRACES, gap) for rule in row.traces
              for gap in _missing_spans(service, rule, evidence)),
            *((METRICS, gap) for rule in row.metrics
              for gap in _missing_metric(service, rule, evidence)),
            *((LOGS, gap) for rule in row.logs
              for gap in _missing_records(service, rule, evidence)),
        ]
        found = {f"{signal}: {gap}" for signal, gap in cells}
        missing += [f"{service} {cell}" for cell in sorted(found)
                    if cell not in row.known_gaps]
        closed += [f"{service} {cell}" for cell in row.known_gaps if cell not in found]
    return missing, closed


@dataclass(frozen=True)
class Share:
    """How many of the matrix's cells (one per attribute or field a rule asks for, and
    one per metric) some traffic filled, per signal."""

    filled: dict[str, int]
    cells: dict[str, int]

    def of(self, signal: str | None = None) -> float:
        """The share filled, of one signal or (None) of all."""
        signals = [signal] if signal else list(self.cells)
        total = sum(self.cells[name] for name in signals)
        return sum(self.filled[name] for name in signals) / total if total else 0.0


def share(evidence: Evidence, services: Iterable[str]) -> Share:
    """The share of `services`' cells of the matrix that `evidence` fills, the
    attributes looked for under the names its approach gives them (`NAMES`)."""
    filled = dict.fromkeys((TRACES, METRICS, LOGS), 0)
    cells = dict.fromkeys((TRACES, METRICS, LOGS), 0)
    for service in services:
        row = MATRIX[service]
        checks = [
            *((TRACES, rule.attributes, _check_spans(service, rule, evidence))
              for rule in row.traces),
            *((METRICS, (rule.name, *rule.attributes), _check_metric(service, rule, evidence))
              for rule in row.metrics),
            *((LOGS, rule.fields, _check_records(service, rule, evidence))
              for rule in row.logs),
        ]
        for signal, asked, check in checks:
            cells[signal] += len(asked)
            if semconv.SERVICE_NAME not in check.missing:  # spans not named: none counts
                filled[signal] += len(asked) - len(set(check.missing) & set(asked))
    return Share(filled, cells)
