"""The fault flags kansoku has: the one description of every flag.

`FLAGS` names each flag, the service that acts on it, its variants (the first is `off`)
with the value each gives the code, what it does and what to look for. The CLI
(`kansoku flags`), the gateway's admin API and `/admin/faults` page, chaos experiments and
`docs/faults.md` all show these words; `flagfile` writes these variants to the flags file;
`FLAG_KINDS` tells a service's `kansoku.kit.flags.FaultFlags` how to evaluate each flag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from kansoku.kit.flagkinds import OFF, FlagKind, FlagValue
from kansoku.kit.i18n import N_, _

# A flag's words are marked with N_ (kept English here) and shown in the reader's
# language with `gettext(flag.description)` where a page or the command line says them.


class FaultCategory(StrEnum):
    """What kind of trouble a fault causes: the cause a learner names in a drill
    (`kansoku drill answer --cause`), and how the drills are grouped."""

    #: Requests fail: exceptions, 5xx answers.
    ERRORS = "errors"
    #: Requests succeed, slowly.
    LATENCY = "latency"
    #: A process runs short of CPU or memory, or the shop of capacity.
    RESOURCES = "resources"
    #: Events pile up or arrive late between services.
    MESSAGING = "messaging"
    #: What only a browser sees: pages and images that load slowly.
    BROWSER = "browser"
    #: A component does not answer at all: stopped, partitioned, hung.
    OUTAGE = "outage"


#: A flag's variants in order, each with the value it gives the code.
Variants = tuple[tuple[str, FlagValue], ...]


@dataclass(frozen=True)
class FlagDefinition:
    """One fault flag: its variants (the first is `off`) with the value each gives the
    code, the service that acts on it, and the words people read about it."""

    name: str
    service: str
    category: FaultCategory
    description: str
    effect: str
    look_for: str
    variants: Variants

    @property
    def kind(self) -> FlagKind:
        """How a service evaluates the flag: on/off variants are a switch, percentages
        (`25%` → 0.25) a share of requests, other numbers an amount (seconds, a factor)."""
        if isinstance(self.variants[0][1], bool):
            return FlagKind.SWITCH
        if self.variants[-1][0].endswith("%"):
            return FlagKind.SHARE
        return FlagKind.AMOUNT

    @property
    def variant_names(self) -> list[str]:
        return [name for name, _ in self.variants]


def _on_off() -> Variants:
    return ((OFF, False), ("on", True))


def _numbers(unit: str, *values: float, scale: float = 1.0) -> Variants:
    return ((OFF, 0.0), *((f"{value:g}{unit}", value * scale) for value in values))


FLAGS: dict[str, FlagDefinition] = {flag.name: flag for flag in (
    FlagDefinition(
        "paymentFailure", "payments", FaultCategory.ERRORS,
        N_("Payments fail that share of charges with a processing error (500)."),
        N_("A charge hit by the fault raises PaymentProcessingError after the card network "
           "round trip: payments answers 500 (nothing is charged or stored), orders cancels "
           "the order, releases its stock and answers 503 payments-unavailable."),
        N_("Services: payments' error rate; its POST /charges traces in red with the "
           "exception and feature_flag.key=paymentFailure; orders' "
           "POST /orders/{order_id}/payment errors; a fault-flag problem naming "
           "paymentFailure on payments POST /charges within a minute, even at 25%; the "
           "checkout SLO's budget burning (every failed payment is an unpaid checkout); "
           "error-hotspot problems; the error-rate alert on payments, naming the flag, once "
           "five charges fail within a minute."),
        _numbers("%", 10, 25, 50, 75, 100, scale=0.01)),
    FlagDefinition(
        "paymentLatency", "payments", FaultCategory.LATENCY,
        N_("Every charge waits this much longer on the card network."),
        N_("The `card network authorize` span of every charge sleeps the extra time. At 3s "
           "the call reaches orders' 3 s read timeout, so checkouts also start failing with "
           "payments-unavailable."),
        N_("Services: payments' p95 latency; the POST /charges waterfall (the long span is "
           "`card network authorize`); a slow-endpoint problem; at 3s the latency alert on "
           "payments."),
        _numbers("s", 1, 3)),
    FlagDefinition(
        "paymentUnreachable", "payments", FaultCategory.OUTAGE,
        N_("Payments accepts charge requests and never answers them."),
        N_("A charge hangs without answering until the caller gives up (orders' 3 s read "
           "timeout), as behind a network partition or a stuck process; payments stops "
           "waiting when the caller disconnects (at most 60 s). Orders cancels the order "
           "and answers 503; after repeated timeouts its circuit breaker to payments opens."),
        N_("Traces of POST /orders/{order_id}/payment: the payments client span ends in a "
           "read timeout; the kansoku.circuit_breaker.state metric of orders → payments; "
           "orders' error rate; payments' own span ends with the `caller gave up` error."),
        _on_off()),
    FlagDefinition(
        "catalogSlowQuery", "catalog", FaultCategory.LATENCY,
        N_("Catalog's product list query takes 2 seconds longer (pg_sleep in the SQL)."),
        N_("The product list SELECT runs with pg_sleep(2) inside it, bypassing the cache, "
           "and holds a database connection meanwhile: the storefront's listings and search "
           "take over 2 s and under load the pool runs short."),
        N_("A slow-query problem on catalog naming the statement; catalog's GET /products "
           "p95; the SQL span in the waterfall; kansoku pool metrics under load."),
        _on_off()),
    FlagDefinition(
        "catalogNPlusOne", "catalog", FaultCategory.LATENCY,
        N_("Catalog's product list loads each product's category with its own query."),
        N_("GET /products reads the products without their categories, then runs one "
           "SELECT per product for its category (bypassing the cache): a page of 20 "
           "products is 22 statements instead of 2."),
        N_("Problems: an N+1 queries problem on catalog for GET /products; the waterfall of "
           "a product list shows a ladder of identical SELECTs from categories."),
        _on_off()),
    FlagDefinition(
        "inventoryFailure", "inventory", FaultCategory.ERRORS,
        N_("Inventory fails that share of stock reads and reservations (500)."),
        N_("GET /stock and POST /reservations raise StockServiceError before touching the "
           "database: product pages lose their stock line and checkouts fail."),
        N_("Services: inventory's error rate; traces with the exception and "
           "feature_flag.key=inventoryFailure; errors in the gateway and orders above it; "
           "the error-rate alert on inventory."),
        _numbers("%", 10, 50, 100, scale=0.01)),
    FlagDefinition(
        "cartCacheOutage", "cart", FaultCategory.ERRORS,
        N_("Cart's Valkey calls fail: connection refused."),
        N_("Cart talks to an address that refuses connections instead of Valkey, so every "
           "cart read and change fails with redis ConnectionError (500): adding to cart and "
           "checkout fail."),
        N_("Services: cart's error rate; cart traces with the ConnectionError exception and "
           "its log lines; gateway errors on /api/v1/cart."),
        _on_off()),
    FlagDefinition(
        "orderQueueLag", "worker", FaultCategory.MESSAGING,
        N_("The worker takes 5 seconds over each order event."),
        N_("Before handling order.paid and order.cancelled the worker waits 5 s in a "
           "`slow consumer` span; events are handled one at a time, so under load they pile "
           "up in JetStream and confirmation e-mails arrive late."),
        N_("Metrics: kansoku.events.consumer.lag for order-confirmation rising; the queue-lag "
           "alert; long `order.paid process` spans in the worker."),
        _on_off()),
    FlagDefinition(
        "workerMemoryLeak", "worker", FaultCategory.RESOURCES,
        N_("The worker keeps memory for every event it handles (256 KiB times the factor)."),
        N_("Each event handled keeps 256 KiB (1x), 2.5 MiB (10x) or 25 MiB (100x) in a list "
           "that is never read, up to 512 MiB in all; turning the flag off frees it (as a "
           "restart would)."),
        N_("Problems: 'memory growing in worker (pid …)' while it climbs, and a fault-flag "
           "problem on its consumer spans; Metrics: process.memory.usage of the worker "
           "climbing; the memory saturation alert once the worker holds 512 MiB (at 100x "
           "within two minutes under load)."),
        ((OFF, 0.0), ("1x", 1.0), ("10x", 10.0), ("100x", 100.0))),
    FlagDefinition(
        "gatewayCpuHog", "gateway", FaultCategory.RESOURCES,
        N_("The gateway burns 50 ms of CPU on every request."),
        N_("Each request to the gateway spends 50 ms of CPU in a `cpu-intensive work` span on "
           "the event loop, so under load the gateway's core fills up and every request "
           "waits for the ones before it."),
        N_("Problems: 'CPU saturation in gateway (pid …)' once the gateway keeps 0.4 cores "
           "or more busy for a minute, twice its usual, and a fault-flag problem on its "
           "spans; Metrics: process.cpu.utilization of the gateway; every service's latency "
           "as seen from the gateway; the `cpu-intensive work` spans."),
        _on_off()),
    FlagDefinition(
        "imageSlowLoad", "gateway", FaultCategory.BROWSER,
        N_("Product images take this long to arrive in the browser."),
        N_("The gateway waits this long (in a `slow image delivery` span) before sending "
           "each product image or thumbnail."),
        N_("Browser: LCP of product and home pages turns poor (browsers only: the browser "
           "synthetic, which `kansoku install-browser` turns on, or real ones); the "
           "gateway's image routes' latency; the `slow image delivery` spans."),
        _numbers("s", 5, 10)),
    FlagDefinition(
        "dbConnectionLoss", "catalog", FaultCategory.ERRORS,
        N_("Catalog loses its database connections and cannot make new ones."),
        N_("Pooled connections are dropped when taken, and new ones go to an address that "
           "refuses them: every catalog request that needs PostgreSQL fails (500) with the "
           "connection error. Cached reads still work until they expire."),
        N_("Services: catalog's error rate; traces with ConnectionRefusedError; catalog's "
           "readiness; the error-rate alert on catalog."),
        _on_off()),
    FlagDefinition(
        "loadFlood", "loadgen", FaultCategory.RESOURCES,
        N_("`kansoku load` multiplies its users by ten, as in a flash sale."),
        N_("While on, a running `kansoku load` drives ten times its configured users; the "
           "services' code is unchanged: the pressure itself is the fault."),
        N_("Services: request rate and latency of every service; saturation alerts; pool "
           "and rate-limit (429) metrics."),
        _on_off()),
)}


#: How every service evaluates each flag: what `build_service_app`'s callers give their
#: `FaultFlags`, so the kit knows the flags without knowing the shop.
FLAG_KINDS: Mapping[str, FlagKind] = {name: flag.kind for name, flag in FLAGS.items()}


class FlagError(ValueError):
    """A name or variant that does not exist; the message lists the valid ones."""


def flag_definition(name: str) -> FlagDefinition:
    """The flag called `name` (ignoring case), or a `FlagError` listing every flag."""
    found = FLAGS.get(name) or next(
        (flag for flag in FLAGS.values() if flag.name.lower() == name.lower()), None)
    if found is None:
        raise FlagError(_("There is no fault flag '{name}'. Flags: {flags}.").format(
            name=name, flags=", ".join(FLAGS)))
    return found


def canonical_variant(flag: FlagDefinition, variant: str) -> str:
    """`variant` as the flag spells it (ignoring case), or a `FlagError` listing them."""
    for known in flag.variant_names:
        if known.lower() == variant.strip().lower():
            return known
    raise FlagError(_("Flag {flag} has no variant '{variant}'. Variants: {variants}.").format(
        flag=flag.name, variant=variant, variants=", ".join(flag.variant_names)))
