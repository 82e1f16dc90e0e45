"""Every telemetry name kansoku uses, in one place.

Where OpenTelemetry's semantic conventions define a name we use theirs (re-exported here
so a reader finds all names in one module); kansoku's own names start with `kansoku.`.
"""

from __future__ import annotations

from typing import Final

# --- Attributes from the OpenTelemetry semantic conventions -------------------------
ENDUSER_ID: Final = "enduser.id"
SERVICE_NAME: Final = "service.name"
SERVICE_VERSION: Final = "service.version"
SERVICE_NAMESPACE: Final = "service.namespace"
#: The process's id, on every signal's resource: the explorer names the process whose
#: memory grows or whose CPU is saturated by it.
PROCESS_PID: Final = "process.pid"
PEER_SERVICE: Final = "peer.service"
HTTP_REQUEST_METHOD: Final = "http.request.method"
HTTP_ROUTE: Final = "http.route"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
URL_PATH: Final = "url.path"
URL_SCHEME: Final = "url.scheme"
CLIENT_ADDRESS: Final = "client.address"
USER_AGENT: Final = "user_agent.original"
URL_FULL: Final = "url.full"
SERVER_ADDRESS: Final = "server.address"
SERVER_PORT: Final = "server.port"
ERROR_TYPE: Final = "error.type"
DB_SYSTEM: Final = "db.system"
DB_NAME: Final = "db.name"
DB_USER: Final = "db.user"
DB_STATEMENT: Final = "db.statement"
DB_OPERATION: Final = "db.operation"
#: The connections of a pool by state (`idle`, `used`), per `pool.name`.
METRIC_DB_CONNECTIONS_USAGE: Final = "db.client.connections.usage"
DB_POOL_NAME: Final = "pool.name"
DB_REDIS_DATABASE_INDEX: Final = "db.redis.database_index"
DB_CONNECTION_STATE: Final = "state"
#: The server's request-duration histogram (seconds), per method, route and status.
METRIC_HTTP_SERVER_DURATION: Final = "http.server.request.duration"
#: The client's duration of calls to other services (seconds), per method, callee, status.
METRIC_HTTP_CLIENT_DURATION: Final = "http.client.request.duration"

#: Every component reports this namespace, so one backend can hold several platforms.
NAMESPACE: Final = "kansoku"

# --- Which instrumentation approach made a record (docs/approaches.md) ---------------
#: Set by the explorer on every span it stores, when the sender did not: `otel`, `xray`
#: or `newrelic` (the values of `kit.approaches.Instrumentation`).
TELEMETRY_SOURCE: Final = "telemetry.source"
#: The X-Ray annotation naming the logged-in user (annotations are X-Ray's indexed,
#: searchable attributes: letters, digits and underscores only, hence not `enduser.id`).
XRAY_USER_ID_ANNOTATION: Final = "user_id"
#: The New Relic custom attribute naming the logged-in user (New Relic's own examples
#: name it so; the explorer also fills `enduser.id` from it).
NEWRELIC_USER_ID_ATTRIBUTE: Final = "userId"
#: Set on a service's request span when the request carried a trace header of another
#: approach that this service cannot continue (an `X-Amzn-Trace-Id` reaching an
#: OpenTelemetry or New Relic service, a `traceparent` reaching an X-Ray one): its value
#: names the header, and the trace stops here (docs/approaches.md, mixed shops).
TRACE_BREAK: Final = "kansoku.trace.break"
#: With it, the caller's trace id (32 hex digits) read from that header: the trace the
#: request came from, to look up by hand.
TRACE_BREAK_CALLER_TRACE_ID: Final = "kansoku.trace.break.caller_trace_id"
#: With it, why, in a sentence.
TRACE_BREAK_REASON: Final = "kansoku.trace.break.reason"
#: The X-Ray annotations carrying the same (annotation names allow letters, digits and
#: underscores only); the explorer's X-Ray intake stores them under the names above.
XRAY_TRACE_BREAK_ANNOTATION: Final = "kansoku_trace_break"
XRAY_TRACE_BREAK_CALLER_ANNOTATION: Final = "kansoku_trace_break_caller_trace_id"
XRAY_TRACE_BREAK_REASON_ANNOTATION: Final = "kansoku_trace_break_reason"
#: The X-Ray annotations of a NATS event's publish (a subsegment) and its handling (a
#: segment): the SDK knows no messaging, so the kit records them (kit/approaches/xray.py).
XRAY_MESSAGING_SYSTEM_ANNOTATION: Final = "messaging_system"
XRAY_MESSAGING_DESTINATION_ANNOTATION: Final = "messaging_destination_name"
XRAY_MESSAGING_MESSAGE_ID_ANNOTATION: Final = "messaging_message_id"
XRAY_MESSAGING_CONSUMER_ANNOTATION: Final = "messaging_consumer_group_name"

# --- Baggage keys (travel with the request across every service) --------------------
#: The logged-in user. Stamped as `enduser.id` on every span of the request.
BAGGAGE_USER_ID: Final = ENDUSER_ID

# --- HTTP headers --------------------------------------------------------------------
REQUEST_ID_HEADER: Final = "X-Request-ID"

# --- kansoku attributes --------------------------------------------------------------
REQUEST_ID: Final = "kansoku.request_id"
CIRCUIT_NAME: Final = "kansoku.circuit.name"
HEALTH_CHECK: Final = "kansoku.health.check"

# --- kansoku metrics -----------------------------------------------------------------
#: 0 = closed, 1 = half-open, 2 = open; one series per downstream service.
METRIC_CIRCUIT_STATE: Final = "kansoku.circuit_breaker.state"
METRIC_CATALOG_PRODUCTS_LISTED: Final = "kansoku.catalog.products.listed"

CIRCUIT_STATE_VALUES: Final[dict[str, int]] = {"closed": 0, "half-opened": 1, "opened": 2}
METRIC_USERS_REGISTERED: Final = "kansoku.identity.users.registered"
METRIC_LOGINS: Final = "kansoku.identity.logins"
#: Logins locked after failures in a row, by `kind` (account or address).
METRIC_LOGIN_LOCKS: Final = "kansoku.identity.login.locks"
METRIC_RESERVATIONS_EXPIRED: Final = "kansoku.inventory.reservations.expired"
METRIC_OUT_OF_STOCK: Final = "kansoku.inventory.out_of_stock"
METRIC_CART_ADDS: Final = "kansoku.cart.units.added"
METRIC_PAYMENTS: Final = "kansoku.payments.succeeded"
METRIC_PAYMENT_DECLINES: Final = "kansoku.payments.declined"
PAYMENT_METHOD: Final = "kansoku.payment.method"
PAYMENT_CARD_BRAND: Final = "kansoku.payment.card_brand"
PAYMENT_DECLINE_REASON: Final = "kansoku.payment.decline_reason"
METRIC_ORDERS: Final = "kansoku.orders"
METRIC_REVENUE: Final = "kansoku.orders.revenue"
METRIC_ITEMS_SOLD: Final = "kansoku.orders.items_sold"
ORDER_ID: Final = "kansoku.order.id"
ORDER_NUMBER: Final = "kansoku.order.number"
METRIC_DEAD_LETTERS: Final = "kansoku.events.dead_letters"
MESSAGING_SYSTEM: Final = "messaging.system"
#: `messaging.system` of kansoku's events.
MESSAGING_SYSTEM_NATS: Final = "nats"
MESSAGING_DESTINATION: Final = "messaging.destination.name"
MESSAGING_MESSAGE_ID: Final = "messaging.message.id"
MESSAGING_CONSUMER: Final = "messaging.consumer.group.name"
#: The attribute each of the kit's X-Ray annotations stands for (X-Ray's names cannot
#: hold dots); the explorer's X-Ray intake stores an annotation under both names.
XRAY_ANNOTATION_ATTRIBUTES: Final = {
    XRAY_TRACE_BREAK_ANNOTATION: TRACE_BREAK,
    XRAY_TRACE_BREAK_CALLER_ANNOTATION: TRACE_BREAK_CALLER_TRACE_ID,
    XRAY_TRACE_BREAK_REASON_ANNOTATION: TRACE_BREAK_REASON,
    XRAY_MESSAGING_SYSTEM_ANNOTATION: MESSAGING_SYSTEM,
    XRAY_MESSAGING_DESTINATION_ANNOTATION: MESSAGING_DESTINATION,
    XRAY_MESSAGING_MESSAGE_ID_ANNOTATION: MESSAGING_MESSAGE_ID,
    XRAY_MESSAGING_CONSUMER_ANNOTATION: MESSAGING_CONSUMER,
}
METRIC_FUNCTION_INVOCATIONS: Final = "kansoku.worker.invocations"
METRIC_FUNCTION_DURATION: Final = "kansoku.worker.duration"
METRIC_CACHE_REQUESTS: Final = "kansoku.cache.requests"
CACHE_NAME: Final = "kansoku.cache.name"
METRIC_PRODUCT_VIEWS: Final = "kansoku.catalog.product.views"
METRIC_SEARCHES: Final = "kansoku.catalog.searches"
METRIC_RATE_LIMITED: Final = "kansoku.gateway.rate_limited"
#: Carts that had items and saw no change (and no checkout) for the abandonment window.
METRIC_CART_ABANDONED: Final = "kansoku.cart.abandoned"
METRIC_IMAGES_UPLOADED: Final = "kansoku.catalog.images.uploaded"
METRIC_NOTIFICATIONS: Final = "kansoku.worker.notifications"
NOTIFICATION_CHANNEL: Final = "kansoku.notification.channel"
METRIC_REPORTS: Final = "kansoku.worker.reports"
PRODUCT_ID: Final = "kansoku.product.id"

#: The process's own runtime metrics every service exports (OpenTelemetry's system
#: metrics instrumentation): the explorer's CPU and memory charts.
METRIC_PROCESS_CPU: Final = "process.cpu.utilization"
METRIC_PROCESS_MEMORY: Final = "process.memory.usage"
RUNTIME_METRICS: Final = (METRIC_PROCESS_CPU, METRIC_PROCESS_MEMORY,
                          "process.thread.count", "cpython.gc.collections")

# --- Real-user monitoring (the gateway's browser intake, the explorer's Browser page) ----

#: The browser shows up as this service, beside the gateway it talks to.
RUM_SERVICE: Final = "storefront-web"
#: Log records are events; the explorer's Browser page selects them by this attribute.
EVENT_NAME: Final = "event.name"
EVENT_WEB_VITAL: Final = "browser.web_vital"
EVENT_ERROR: Final = "browser.error"
EVENT_PAGE_VIEW: Final = "browser.page_view"
EVENT_CLICK: Final = "browser.click"
WEB_VITAL_NAME: Final = "web_vital.name"
WEB_VITAL_VALUE: Final = "web_vital.value"
WEB_VITAL_RATING: Final = "web_vital.rating"
#: OpenTelemetry's names for the browser session, the page's route and the browser.
SESSION_ID: Final = "session.id"
URL_TEMPLATE: Final = "url.template"
EXCEPTION_TYPE: Final = "exception.type"
EXCEPTION_MESSAGE: Final = "exception.message"
EXCEPTION_STACKTRACE: Final = "exception.stacktrace"
CODE_FILE_PATH: Final = "code.file.path"
CODE_LINE_NUMBER: Final = "code.line.number"
CODE_COLUMN_NUMBER: Final = "code.column.number"
#: kansoku's own: one page view (its vitals, errors and clicks share it), how the page
#: was reached, and the key action (`data-rum-action`) a span or click belongs to.
RUM_PAGE_VIEW_ID: Final = "kansoku.rum.page_view.id"
RUM_NAVIGATION_TYPE: Final = "kansoku.rum.navigation_type"
RUM_ACTION: Final = "kansoku.rum.action"
RUM_UNHANDLED_REJECTION: Final = "kansoku.rum.unhandled_rejection"

#: One histogram per Web Vital (CLS is unitless, the others are milliseconds).
METRIC_WEB_VITALS: Final[dict[str, str]] = {
    "LCP": "kansoku.browser.lcp", "INP": "kansoku.browser.inp", "CLS": "kansoku.browser.cls",
    "FCP": "kansoku.browser.fcp", "TTFB": "kansoku.browser.ttfb"}
METRIC_PAGE_VIEWS: Final = "kansoku.browser.page_views"
METRIC_ERRORS: Final = "kansoku.browser.errors"
METRIC_KEY_ACTIONS: Final = "kansoku.browser.key_actions"
METRIC_ACTION_DURATION: Final = "kansoku.browser.action.duration"

#: web-vitals' thresholds: (good up to, poor above). The explorer rates its p75 with the
#: same numbers (this table).
VITAL_THRESHOLDS: Final[dict[str, tuple[float, float]]] = {
    "LCP": (2500.0, 4000.0), "INP": (200.0, 500.0), "CLS": (0.1, 0.25),
    "FCP": (1800.0, 3000.0), "TTFB": (800.0, 1800.0)}

# --- The performance lab (services/lab) -------------------------------------------------

#: The seeds' custom attribute: which lab operation a span belongs to (`n_plus_one`,
#: `n_plus_one_fixed`, `slow_query`, …). The lab puts it in baggage beside the user
#: id, and its tracer stamps it on every span it makes, database spans included.
OPERATION_TYPE: Final = "operation.type"
#: Whether the operation is a problem's fixed twin.
LAB_FIXED: Final = "kansoku.lab.fixed"
#: Which form of the scenario ran (slow query: `sleep` or `cartesian`; database error:
#: `missing-table` or `constraint`).
LAB_VARIANT: Final = "kansoku.lab.variant"
#: Statements the operation sent to PostgreSQL, counted as they were executed.
LAB_QUERY_COUNT: Final = "kansoku.lab.query_count"
#: Lab runs, per `operation.type` and outcome (`success` or `error`).
METRIC_LAB_RUNS: Final = "kansoku.lab.runs"
LAB_OUTCOME: Final = "kansoku.lab.outcome"
#: Statements per lab run (a histogram), per `operation.type`: N+1 shows as a tail.
METRIC_LAB_QUERIES: Final = "kansoku.lab.queries"

# --- Faults, load, synthetic monitoring and alerts (issue 8) ------------------------------

#: OpenTelemetry's feature-flag conventions: a span on which a fault flag acted carries
#: the flag and the variant that acted.
FEATURE_FLAG_KEY: Final = "feature_flag.key"
FEATURE_FLAG_VARIANT: Final = "feature_flag.result.variant"
#: Messages waiting for a JetStream consumer (a gauge, per `messaging.consumer.group.name`
#: and `messaging.destination.name`): the queue lag the alerts watch.
METRIC_QUEUE_LAG: Final = "kansoku.events.consumer.lag"
#: Baggage entry that marks generated traffic: `load` (kansoku load) or `synthetic`
#: (the synthetic monitors). Every service copies it onto its spans.
BAGGAGE_SYNTHETIC: Final = "kansoku.synthetic"
#: Synthetic monitor runs (a counter per journey and outcome `success` / `failure`) and
#: their duration (a histogram, seconds).
METRIC_SYNTHETIC_RUNS: Final = "kansoku.synthetics.runs"
METRIC_SYNTHETIC_DURATION: Final = "kansoku.synthetics.duration"
SYNTHETIC_JOURNEY: Final = "kansoku.synthetic.journey"
SYNTHETIC_OUTCOME: Final = "kansoku.synthetic.outcome"
#: Chaos experiments (`kansoku chaos run`): the experiment's title, its outcome
#: (`recovered`, `not-recovered`, `aborted`, `failed`, `interrupted`), the recovery time
#: in seconds, and on each step's span its phase (`method` / `rollback`) and action.
CHAOS_EXPERIMENT: Final = "kansoku.chaos.experiment"
CHAOS_STATUS: Final = "kansoku.chaos.status"
CHAOS_RECOVERY_SECONDS: Final = "kansoku.chaos.recovery_seconds"
CHAOS_PHASE: Final = "kansoku.chaos.phase"
CHAOS_ACTION: Final = "kansoku.chaos.action"
#: On the experiment's "hypothesis deviated" events: the probes that did not hold.
CHAOS_DEVIATIONS: Final = "kansoku.chaos.deviations"

# --- Checkout compensation (payments refunds what a cancelled order was charged) -------

#: Refunds (a counter per `kansoku.payment.refund_reason`): `order_cancelled` when
#: payments gave the money back on its own after an `order.cancelled` event (a charge
#: that finished after orders gave up waiting), `requested` when a caller asked for it.
METRIC_PAYMENT_REFUNDS: Final = "kansoku.payments.refunded"
PAYMENT_REFUND_REASON: Final = "kansoku.payment.refund_reason"
PAYMENT_ID: Final = "kansoku.payment.id"
#: Why orders cancelled an order (on orders' span event and payments' consumer span).
ORDER_CANCEL_REASON: Final = "kansoku.order.cancel_reason"
#: On a consumer span: the event had already been handled, so nothing was done again.
EVENT_DUPLICATE: Final = "kansoku.event.duplicate"
