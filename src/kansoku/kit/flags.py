"""Fault flags: switches that make a service really fail, slow down or leak, on purpose.

One file in flagd's JSON format (`<data dir>/flags.json`, `KANSOKU_FLAGS_FILE`) holds the
current variant of every flag. Two sides use it:

- **Control** (`kansoku flags`, the gateway's admin API and `/admin/faults` page) reads
  and writes the file with `read_variants`, `set_variant` and `reset`. Writes go to a
  temporary file that is renamed over the old one, under a lock, so a reader never sees
  half a file and two writers never lose each other's change.
- **Services** each hold a `FaultFlags`, which evaluates the flags through the
  OpenFeature SDK with the flagd provider in file mode. The provider polls the file
  (every `POLL_MILLISECONDS`) and announces a change; `FaultFlags` then evaluates every
  flag once and keeps the results, so asking on a request's hot path is a dictionary
  lookup (an evaluation through the SDK costs about 30 µs; the lookup well under 1 µs).

`FLAGS` is the one description of every flag — its variants, what it does, what to look
for — that the CLI, the API, the admin page and `docs/faults.md` all show. A service
asks `flags.active("paymentFailure")`: `None` when the flag is off, else an
`ActiveFault` that marks the span it acts on (`feature_flag.key`,
`feature_flag.result.variant`), sleeps inside its own span, or builds the error.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import json
import logging
import os
import random
import socket
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy.exc
from fastapi import Depends, Request
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from kansoku.kit import semconv
from kansoku.kit.errors import Problem

logger = logging.getLogger(__name__)
_tracer = trace.get_tracer("kansoku.faults")

#: flagd's schema, named in the file so editors can check it.
FLAGD_SCHEMA = "https://flagd.dev/schema/v0/flags.json"
#: The variant every flag has, and starts in.
OFF = "off"
#: How often the flagd provider looks at the file's modification time. (In file mode the
#: provider uses its `deadline_ms` as the polling interval.)
POLL_MILLISECONDS = 500
#: The variable the supervisor sets for every service.
FLAGS_FILE_VARIABLE = "KANSOKU_FLAGS_FILE"

Value = bool | float


@dataclass(frozen=True)
class FlagDefinition:
    """One fault flag: its variants (the first is `off`) with the value each gives the
    code, the service that acts on it, and the words people read about it."""

    name: str
    service: str
    description: str
    effect: str
    look_for: str
    variants: tuple[tuple[str, Value], ...]

    @property
    def boolean(self) -> bool:
        return isinstance(self.variants[0][1], bool)

    @property
    def share(self) -> bool:
        """Whether the variants are shares of requests (`25%` → 0.25)."""
        return self.variants[-1][0].endswith("%")

    @property
    def variant_names(self) -> list[str]:
        return [name for name, _ in self.variants]

    def value_of(self, variant: str) -> Value:
        return dict(self.variants)[variant]


def _on_off() -> tuple[tuple[str, Value], ...]:
    return ((OFF, False), ("on", True))


def _numbers(unit: str, *values: float, scale: float = 1.0) -> tuple[tuple[str, Value], ...]:
    return ((OFF, 0.0), *((f"{value:g}{unit}", value * scale) for value in values))


FLAGS: dict[str, FlagDefinition] = {flag.name: flag for flag in (
    FlagDefinition(
        "paymentFailure", "payments",
        "Payments fail that share of charges with a processing error (500).",
        "A charge hit by the fault raises PaymentProcessingError after the card network "
        "round trip: payments answers 500 (nothing is charged or stored), orders cancels "
        "the order, releases its stock and answers 503 payments-unavailable.",
        "Services: payments' error rate; its POST /charges traces in red with the "
        "exception and feature_flag.key=paymentFailure; orders' POST /orders/{order_id}/pay "
        "errors; the error-rate alert on payments; an error-hotspot problem.",
        _numbers("%", 10, 25, 50, 75, 100, scale=0.01)),
    FlagDefinition(
        "paymentLatency", "payments",
        "Every charge waits this much longer on the card network.",
        "The `card network authorize` span of every charge sleeps the extra time. At 3s "
        "the call reaches orders' 3 s read timeout, so checkouts also start failing with "
        "payments-unavailable.",
        "Services: payments' p95 latency; the POST /charges waterfall (the long span is "
        "`card network authorize`); the latency alert on payments; a slow-endpoint problem.",
        _numbers("s", 1, 3)),
    FlagDefinition(
        "paymentUnreachable", "payments",
        "Payments accepts charge requests and never answers them.",
        "A charge hangs without answering until the caller gives up (orders' 3 s read "
        "timeout), as behind a network partition or a stuck process; payments stops "
        "waiting when the caller disconnects (at most 60 s). Orders cancels the order "
        "and answers 503; after repeated timeouts its circuit breaker to payments opens.",
        "Traces of POST /orders/{order_id}/pay: the payments client span ends in a read "
        "timeout; the kansoku.circuit_breaker.state metric of orders → payments; "
        "orders' error rate; payments' own span ends with the `caller gave up` error.",
        _on_off()),
    FlagDefinition(
        "catalogSlowQuery", "catalog",
        "Catalog's product list query takes 2 seconds longer (pg_sleep in the SQL).",
        "The product list SELECT runs with pg_sleep(2) inside it, bypassing the cache, "
        "and holds a database connection meanwhile: the storefront's listings and search "
        "take over 2 s and under load the pool runs short.",
        "A slow-query problem on catalog naming the statement; catalog's GET /products "
        "p95; the SQL span in the waterfall; kansoku pool metrics under load.",
        _on_off()),
    FlagDefinition(
        "catalogNPlusOne", "catalog",
        "Catalog's product list loads each product's category with its own query.",
        "GET /products reads the products without their categories, then runs one "
        "SELECT per product for its category (bypassing the cache): 20 products, 21 "
        "statements.",
        "Problems: an N+1 queries problem on catalog for GET /products; the waterfall of "
        "a product list shows a ladder of identical SELECTs from categories.",
        _on_off()),
    FlagDefinition(
        "inventoryFailure", "inventory",
        "Inventory fails that share of stock reads and reservations (500).",
        "GET /stock and POST /reservations raise StockServiceError before touching the "
        "database: product pages lose their stock line and checkouts fail.",
        "Services: inventory's error rate; traces with the exception and "
        "feature_flag.key=inventoryFailure; errors in the gateway and orders above it; "
        "the error-rate alert on inventory.",
        _numbers("%", 10, 50, 100, scale=0.01)),
    FlagDefinition(
        "cartCacheOutage", "cart",
        "Cart's Valkey calls fail: connection refused.",
        "Cart talks to an address that refuses connections instead of Valkey, so every "
        "cart read and change fails with redis ConnectionError (500): adding to cart and "
        "checkout fail.",
        "Services: cart's error rate; cart traces with the ConnectionError exception and "
        "its log lines; gateway errors on /api/v1/cart.",
        _on_off()),
    FlagDefinition(
        "orderQueueLag", "worker",
        "The worker takes 5 seconds over each order event.",
        "Before handling order.paid and order.cancelled the worker waits 5 s in a "
        "`slow consumer` span; events are handled one at a time, so under load they pile "
        "up in JetStream and confirmation e-mails arrive late.",
        "Metrics: kansoku.events.consumer.lag for order-confirmation rising; the queue-lag "
        "alert; long `order.paid process` spans in the worker.",
        _on_off()),
    FlagDefinition(
        "workerMemoryLeak", "worker",
        "The worker keeps memory for every event it handles (256 KiB times the factor).",
        "Each event handled keeps 256 KiB (1x), 2.5 MiB (10x) or 25 MiB (100x) in a list "
        "that is never read, up to 512 MiB in all; turning the flag off frees it (as a "
        "restart would).",
        "Metrics: process.memory.usage of the worker climbing; the memory saturation "
        "alert; consumer spans carry feature_flag.key=workerMemoryLeak.",
        ((OFF, 0.0), ("1x", 1.0), ("10x", 10.0), ("100x", 100.0))),
    FlagDefinition(
        "gatewayCpuHog", "gateway",
        "The gateway burns 50 ms of CPU on every request.",
        "Each request to the gateway spends 50 ms of CPU in a `cpu-intensive work` span on "
        "the event loop, so the gateway saturates a core under load and every request "
        "waits for the ones before it.",
        "Metrics: process.cpu.utilization of the gateway; every service's latency as seen "
        "from the gateway; the CPU saturation alert; the `cpu-intensive work` spans.",
        _on_off()),
    FlagDefinition(
        "imageSlowLoad", "gateway",
        "Product images take this long to arrive in the browser.",
        "The gateway waits this long (in a `slow image delivery` span) before sending "
        "each product image or thumbnail.",
        "Browser: LCP of product and home pages turns poor; the gateway's image routes' "
        "latency; the `slow image delivery` spans.",
        _numbers("s", 5, 10)),
    FlagDefinition(
        "dbConnectionLoss", "catalog",
        "Catalog loses its database connections and cannot make new ones.",
        "Pooled connections are dropped when taken, and new ones go to an address that "
        "refuses them: every catalog request that needs PostgreSQL fails (500) with the "
        "connection error. Cached reads still work until they expire.",
        "Services: catalog's error rate; traces with ConnectionRefusedError; catalog's "
        "readiness; the error-rate alert on catalog.",
        _on_off()),
    FlagDefinition(
        "loadFlood", "loadgen",
        "`kansoku load` multiplies its users by ten, as in a flash sale.",
        "While on, a running `kansoku load` drives ten times its configured users; the "
        "services' code is unchanged: the pressure itself is the fault.",
        "Services: request rate and latency of every service; saturation alerts; pool "
        "and rate-limit (429) metrics.",
        _on_off()),
)}


class FlagError(ValueError):
    """A name or variant that does not exist; the message lists the valid ones."""


class FlagFileError(ValueError):
    """The flags file cannot be read; the message names the file and the fix."""


def flag_definition(name: str) -> FlagDefinition:
    """The flag called `name` (ignoring case), or a `FlagError` listing every flag."""
    found = FLAGS.get(name) or next(
        (flag for flag in FLAGS.values() if flag.name.lower() == name.lower()), None)
    if found is None:
        raise FlagError(f"There is no fault flag '{name}'. Flags: {', '.join(FLAGS)}.")
    return found


def canonical_variant(flag: FlagDefinition, variant: str) -> str:
    """`variant` as the flag spells it (ignoring case), or a `FlagError` listing them."""
    for known in flag.variant_names:
        if known.lower() == variant.strip().lower():
            return known
    raise FlagError(f"Flag {flag.name} has no variant '{variant}'. "
                    f"Variants: {', '.join(flag.variant_names)}.")


# --- The file ------------------------------------------------------------------------


def default_path() -> Path | None:
    """The flags file named by `KANSOKU_FLAGS_FILE`, if set."""
    value = os.environ.get(FLAGS_FILE_VARIABLE, "").strip()
    return Path(value) if value else None


def _flag_document(flag: FlagDefinition, variant: str) -> dict[str, Any]:
    return {"state": "ENABLED", "variants": dict(flag.variants), "defaultVariant": variant}


def _read_document(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise FlagFileError(f"cannot read the flags file {path}: {exc.strerror}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FlagFileError(f"the flags file {path} is not valid JSON (line {exc.lineno}): "
                            "fix it, or run `kansoku flags reset`") from exc
    if not isinstance(document, dict) or not isinstance(document.get("flags", {}), dict):
        raise FlagFileError(f"the flags file {path} is not in flagd's format (an object "
                            "with \"flags\"): fix it, or run `kansoku flags reset`")
    return document


def read_variants(path: Path) -> dict[str, str]:
    """The current variant of every flag (in `FLAGS` order). A missing file, a flag
    missing from it or disabled in it, all count as `off`."""
    document = _read_document(path) or {}
    found: dict[str, str] = {}
    for name in FLAGS:
        entry = document.get("flags", {}).get(name)
        variant = entry.get("defaultVariant") if isinstance(entry, dict) else None
        enabled = isinstance(entry, dict) and entry.get("state", "ENABLED") == "ENABLED"
        found[name] = str(variant) if enabled and variant is not None else OFF
    return found


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock beside the file: read-modify-write by the CLI and the
    admin page at the same moment must not lose either change."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write_document(path: Path, variants: Mapping[str, str],
                    others: Mapping[str, Any]) -> None:
    """Write every flag at its variant, keeping flags this module does not know
    (`others`), atomically: a temporary file in the same folder, renamed over the old."""
    flags = {**others, **{name: _flag_document(flag, variants.get(name, OFF))
                          for name, flag in FLAGS.items()}}
    document = {"$schema": FLAGD_SCHEMA, "flags": flags}
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(document, file, indent=2)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def set_variant(path: Path, name: str, variant: str) -> tuple[str, str]:
    """Switch flag `name` to `variant` (names and variants ignore case); returns them as
    the flag spells them. Raises `FlagError` naming the valid ones."""
    flag = flag_definition(name)
    chosen = canonical_variant(flag, variant)
    with _locked(path):
        try:
            document = _read_document(path) or {}
        except FlagFileError:
            document = {}  # a broken file is replaced: setting a flag repairs it
        others = {key: value for key, value in document.get("flags", {}).items()
                  if key not in FLAGS}
        variants = read_variants(path) if document else {}
        variants[flag.name] = chosen
        _write_document(path, variants, others)
    logger.info("fault flag %s set to %s", flag.name, chosen,
                extra={"flag": flag.name, "variant": chosen})
    return flag.name, chosen


def reset(path: Path) -> None:
    """Every flag off (the file is created if missing; flags it does not know stay)."""
    with _locked(path):
        try:
            document = _read_document(path) or {}
        except FlagFileError:
            document = {}
        others = {key: value for key, value in document.get("flags", {}).items()
                  if key not in FLAGS}
        _write_document(path, {}, others)


def current_variant(name: str, path: Path | None = None) -> str:
    """The variant flag `name` is at now, read straight from the file (`path`, or
    `KANSOKU_FLAGS_FILE`): for processes outside the services, like the load generator,
    that look now and then. Off when there is no file."""
    flag = flag_definition(name)
    path = path or default_path()
    if path is None:
        return OFF
    try:
        return read_variants(path)[flag.name]
    except FlagFileError:
        return OFF


# --- In a service ------------------------------------------------------------------------


@dataclass(frozen=True)
class ActiveFault:
    """A flag that is on, as one service sees it: its variant and that variant's value
    (a share for percentages, seconds for latencies, a factor, or True)."""

    flag: str
    variant: str
    value: Value

    def hits(self) -> bool:
        """Whether this request is one the fault acts on: always for on/off and time
        flags, that share of the time for percentage flags."""
        if not FLAGS[self.flag].share:
            return True
        return random.random() < self.value  # noqa: S311 - not a secret

    def mark(self, span: Span | None = None) -> None:
        """Say on `span` (default: the current one) that this fault acted on it."""
        span = span or trace.get_current_span()
        span.set_attribute(semconv.FEATURE_FLAG_KEY, self.flag)
        span.set_attribute(semconv.FEATURE_FLAG_VARIANT, self.variant)

    @contextlib.contextmanager
    def span(self, name: str) -> Iterator[Span]:
        """A child span of the current one for the work the fault adds (a sleep, burnt
        CPU); both are marked, so the request's server span shows the fault too."""
        self.mark()
        with _tracer.start_as_current_span(name) as span:
            self.mark(span)
            yield span

    async def sleep(self, seconds: float, span_name: str) -> None:
        """Really wait `seconds`, inside a span of its own."""
        with self.span(span_name):
            await asyncio.sleep(seconds)

    def fail(self, error: Exception, status: int, code: str, detail: str,
             **extensions: Any) -> Problem:
        """The answer to raise for a request this fault breaks. The current span records
        `error` as an exception and turns to error, and one log line says what failed,
        as for a real failure; the caller gets problem+json with `status`."""
        span = trace.get_current_span()
        self.mark(span)
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
        logger.error("%s: %s (fault flag %s=%s)", type(error).__name__, error, self.flag,
                     self.variant, extra={"flag": self.flag, "variant": self.variant})
        problem = Problem(status, code, detail, **extensions)
        problem.__cause__ = error
        return problem


class FaultFlags:
    """The fault flags as this process sees them, kept up to date from the file.

    `start()` registers a flagd provider (file mode) with OpenFeature under a domain of
    its own and evaluates every flag; each change the provider announces re-evaluates
    them. `active(name)` and `variant(name)` only read what was evaluated. Without a
    file (unset, or missing at start-up), every flag is off: one log line says so, and
    the flags come on if the file appears later.
    """

    def __init__(self, path: Path | str | None, service: str) -> None:
        self.path = Path(path) if path else None
        self.service = service
        self._active: dict[str, ActiveFault] = {}
        self._listeners: list[Callable[[], None]] = []
        self._domain = f"kansoku-flags-{service}-{uuid.uuid4().hex[:8]}"
        self._client: Any = None
        self._provider: Any = None
        self._closed = threading.Event()
        self._refreshing = threading.Lock()
        self._waiter: threading.Thread | None = None

    # hot path

    def active(self, name: str) -> ActiveFault | None:
        """The fault if flag `name` is on, else None. A dictionary lookup."""
        return self._active.get(name)

    def variant(self, name: str) -> str:
        fault = self._active.get(name)
        return fault.variant if fault else OFF

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener()` (from a background thread) after every change."""
        self._listeners.append(listener)

    # life cycle

    def start(self) -> None:
        if self.path is None:
            logger.info("fault flags are off: %s is not set", FLAGS_FILE_VARIABLE)
            return
        if not self.path.exists():
            logger.warning("fault flags are off: %s does not exist (`kansoku flags reset` "
                           "creates it)", self.path)
            self._waiter = threading.Thread(target=self._wait_for_file, daemon=True,
                                            name="fault-flags-file-wait")
            self._waiter.start()
            return
        self._connect()

    def close(self) -> None:
        self._closed.set()
        if self._provider is not None:
            from openfeature import api
            from openfeature.provider.no_op_provider import NoOpProvider

            # Replacing the provider shuts it down (its polling thread ends).
            api.set_provider(NoOpProvider(), domain=self._domain)
            self._provider = None

    def _wait_for_file(self) -> None:
        assert self.path is not None
        while not self._closed.wait(POLL_MILLISECONDS / 1000):
            if self.path.exists():
                self._connect()
                return

    def _connect(self) -> None:
        # Imported here: the CLI's `kansoku flags` needs none of it.
        from openfeature import api
        from openfeature.contrib.provider.flagd import FlagdProvider
        from openfeature.contrib.provider.flagd.config import ResolverType
        from openfeature.event import ProviderEvent

        assert self.path is not None
        self._client = api.get_client(self._domain)
        # Registered before the provider starts, so no change can slip in between.
        for provider_event in (ProviderEvent.PROVIDER_READY,
                               ProviderEvent.PROVIDER_CONFIGURATION_CHANGED):
            self._client.add_handler(provider_event, lambda details: self._refresh())
        self._provider = FlagdProvider(resolver_type=ResolverType.FILE,
                                       offline_flag_source_path=str(self.path),
                                       deadline_ms=POLL_MILLISECONDS)
        try:
            api.set_provider_and_wait(self._provider, domain=self._domain)
        except Exception as exc:
            logger.warning("fault flags are off: %s cannot be read (%s)", self.path, exc)
            return
        self._refresh()
        on = {name: fault.variant for name, fault in self._active.items()}
        logger.info("fault flags read from %s%s", self.path,
                    f"; on: {on}" if on else "; all off")

    def _refresh(self) -> None:
        """Evaluate every flag through OpenFeature and swap in the result."""
        client = self._client
        if client is None:
            return
        # Change events run on a thread pool: evaluate one change at a time.
        with self._refreshing:
            self._evaluate(client)

    def _evaluate(self, client: Any) -> None:
        active: dict[str, ActiveFault] = {}
        for name, flag in FLAGS.items():
            if flag.boolean:
                details: Any = client.get_boolean_details(name, False)
            else:
                details = client.get_float_details(name, 0.0)
            if details.error_code is None and details.variant not in (None, OFF) and \
                    details.value:
                active[name] = ActiveFault(name, str(details.variant), details.value)
        changed = active != self._active
        self._active = active  # one assignment: readers see the old or the new dict
        if changed:
            logger.info("fault flags changed; on: %s",
                        {name: fault.variant for name, fault in active.items()} or "none")
            for listener in self._listeners:
                try:
                    listener()
                except Exception:
                    logger.exception("a fault flag listener failed")


async def _fault_flags(request: Request) -> FaultFlags:
    # async: FastAPI runs a plain function dependency in a thread pool, costing far
    # more than the lookup.
    flags: FaultFlags = request.app.state.flags
    return flags


#: A route parameter: the app's `FaultFlags`.
Faults = Annotated[FaultFlags, Depends(_fault_flags)]


# --- Addresses that refuse connections --------------------------------------------------

_refusing: socket.socket | None = None
_refusing_lock = threading.Lock()


def refusing_address() -> tuple[str, int]:
    """A loopback address where every connection is refused: a port this process holds
    bound but never listens on (so nothing else can take it). The faults that cut a
    service off from its database or cache send it here, and the client libraries fail
    exactly as they would against a server that is down."""
    global _refusing
    with _refusing_lock:
        if _refusing is None:
            _refusing = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            _refusing.bind(("127.0.0.1", 0))
            atexit.register(_refusing.close)
        host, port = _refusing.getsockname()
        return str(host), int(port)


def lose_database_while_on(engine: AsyncEngine, flags: FaultFlags,
                           name: str = "dbConnectionLoss") -> None:
    """While flag `name` is on, `engine` loses its database: each pooled connection is
    dropped as it is taken (as after a network cut), and new ones go to an address that
    refuses them, so callers get the driver's own connection error. Once the flag is
    off, the pool connects again on demand."""

    @event.listens_for(engine.sync_engine, "checkout")
    def drop_when_taken(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        fault = flags.active(name)
        if fault:
            fault.mark()
            raise sqlalchemy.exc.DisconnectionError(f"connection lost (fault flag {name})")

    @event.listens_for(engine.sync_engine, "do_connect")
    def connect_nowhere(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]
                        ) -> None:
        fault = flags.active(name)
        if fault:
            fault.mark()
            cparams["host"], cparams["port"] = refusing_address()
