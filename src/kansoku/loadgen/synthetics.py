"""Synthetic monitoring: scripted journeys through the shop, on a schedule and on demand.

Each run of a journey is one trace: a root span `synthetic <journey>` with a child span
per step, and under each step a client span per request, whose `traceparent` goes to the
gateway — so the services' spans join the same trace. Every request also carries the
baggage `kansoku.synthetic=synthetic`, which every service copies onto its spans. Each
run records

- `kansoku.synthetics.runs` (counter) and `kansoku.synthetics.duration` (histogram, s),
  both with `kansoku.synthetic.journey` and `kansoku.synthetic.outcome`
  (`success` / `failure`): the alert rules watch them;
- one log record (in the run's trace), naming the journey, the outcome, the duration
  and, for a failure, the step and what went wrong.

Journeys (`JOURNEY_NAMES`):

- `browse` (API): home page, categories, a product list, a search, a product;
- `checkout` (API): as the monitor customer — log in, a product with plenty in stock,
  add it to an emptied cart, place the order (with an Idempotency-Key), pay with the
  test card that pays, read the order back paid;
- `storefront` (browser): Debian's Chromium through Playwright — home page, a product
  page, no JavaScript error on the way. Skipped, with the reason, when Chromium or
  Playwright is missing (`kansoku install-browser` installs both); a skipped run
  records no metric.

The monitor customers are `synthetic-schedule@example.com` (the scheduled runner) and
`synthetic-monitor@example.com` (`kansoku synth`, on demand): two, so that a run on demand
never empties the cart of a scheduled checkout under way. Their passwords are derived
from the stack's service secret (`KANSOKU_SERVICE_SECRET`), so every run logs in to the
same account rather than registering a new one; without a secret each process registers
an account of its own.

Run it:

- on demand: `kansoku synth [--journey NAME]`;
- on a schedule, in the stack: the component `synthetics`, which `kansoku up` starts
  once the shop is ready (`kansoku serve synthetics`, `create_app`: the schedule as a
  background task, `/health`, `/metrics`, and `GET /runs` for the latest outcomes);
- on a schedule, alone: `python -m kansoku.loadgen.synthetics [--interval S] [--once]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
from opentelemetry import baggage, context, metrics, propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from pydantic import ValidationError

from kansoku import __version__
from kansoku.kit import semconv
from kansoku.kit.telemetry import Telemetry
from kansoku.loadgen import shop
from kansoku.loadgen.browser import storefront_in_browser
from kansoku.loadgen.outcomes import (
    FAILURE,
    JOURNEY_NAMES,
    SKIPPED,
    SUCCESS,
    JourneyFailed,
    JourneySkipped,
)
from kansoku.loadgen.settings import Settings

logger = logging.getLogger("kansoku.synthetics")

#: The service name the monitors' telemetry carries.
SERVICE: Final = "synthetics"

#: The monitor customer of runs on demand (`kansoku synth`).
MONITOR_EMAIL: Final = "synthetic-monitor@example.com"
#: The monitor customer of the scheduled runner.
SCHEDULE_EMAIL: Final = "synthetic-schedule@example.com"
#: Duration buckets (s) for a journey: from a quick browse to a slow checkout.
DURATION_BUCKETS: Final = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0)
#: How many recent results the runner keeps for `GET /runs`.
KEPT_RESULTS: Final = 50


@dataclass
class RunResult:
    """One run of one journey."""

    journey: str
    outcome: str
    duration_seconds: float
    trace_id: str | None
    started_at: float
    #: The step that failed, or None.
    step: str | None = None
    #: What went wrong, or why the journey was skipped.
    error: str | None = None
    steps: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def monitor_password(service_secret: str, email: str = MONITOR_EMAIL) -> str:
    """The password of the monitor customer `email`, derived from the stack's service
    secret: the same for every run on one stack, useless for anything else."""
    purpose = email.split("@")[0].encode()  # b"synthetic-monitor", b"synthetic-schedule"
    return hmac.new(service_secret.encode(), purpose, hashlib.sha256).hexdigest()[:32]


class MonitorAccount:
    """The monitor customer: logs in, registering the account the first time."""

    def __init__(self, service_secret: str | None, email: str = MONITOR_EMAIL) -> None:
        if service_secret:
            self.email, self.password = email, monitor_password(service_secret, email)
        else:
            account = shop.new_account("monitor")
            self.email, self.password = account["email"], account["password"]
        self.token: str | None = None
        self.token_at = 0.0


class Journey:
    """What one run of a journey uses: the gateway client, spans for its steps and
    requests, and the monitor customer."""

    def __init__(self, monitor: Monitor, name: str, client: httpx.AsyncClient) -> None:
        self.monitor, self.name, self.client = monitor, name, client
        self.tracer = monitor.tracer
        self.steps: list[str] = []
        self.current_step: str | None = None

    @contextlib.asynccontextmanager
    async def step(self, name: str) -> AsyncIterator[Span]:
        """A step of the journey: a span of its own, the parent of its requests."""
        self.current_step = name
        self.steps.append(name)
        with self.tracer.start_as_current_span(f"step {name}") as span:
            yield span

    async def call(self, method: str, route: str, *, path: str | None = None,
                   expect: int | tuple[int, ...] = 200,
                   headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        """One request to the gateway, as a client span named by its route, with the
        trace context and the synthetic baggage in its headers. An answer the journey
        does not `expect` (one status, or several) fails it, and is the span's error;
        an expected one, a 401 included, is not an error."""
        path = path or route
        url = f"{self.monitor.gateway}{path}"
        parts = urlsplit(url)
        with self.tracer.start_as_current_span(
                f"{method} {route}", kind=SpanKind.CLIENT, attributes={
                    semconv.HTTP_REQUEST_METHOD: method, semconv.URL_FULL: url,
                    semconv.SERVER_ADDRESS: parts.hostname or "",
                    semconv.SERVER_PORT: parts.port or 80,
                    semconv.URL_TEMPLATE: route}) as span:
            sent = dict(headers or {})
            propagate.inject(sent)
            try:
                answer = await self.client.request(method, url, headers=sent, **kwargs)
            except httpx.HTTPError as exc:
                span.set_attribute(semconv.ERROR_TYPE, type(exc).__name__)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise JourneyFailed(f"{method} {path}: {type(exc).__name__} "
                                    f"({exc or 'no detail'})") from exc
            span.set_attribute(semconv.HTTP_RESPONSE_STATUS_CODE, answer.status_code)
            expected = (expect,) if isinstance(expect, int) else expect
            if answer.status_code not in expected:
                span.set_attribute(semconv.ERROR_TYPE, str(answer.status_code))
                span.set_status(Status(StatusCode.ERROR))
                raise JourneyFailed(f"{method} {path} answered {answer.status_code}, not "
                                    f"{' or '.join(map(str, expected))}: {_detail(answer)}")
            return answer

    async def customer(self) -> dict[str, str]:
        """The monitor customer's Authorization header (logging in, or registering the
        account first, when needed)."""
        account = self.monitor.account
        if account.token is None or time.monotonic() - account.token_at > 600:
            credentials = {"email": account.email, "password": account.password}
            # A 401 is expected once per stack: the account does not exist yet.
            answer = await self.call("POST", f"{shop.API}/auth/login", expect=(200, 401),
                                     json=credentials)
            if answer.status_code == 401:
                await self.call("POST", f"{shop.API}/users", expect=201, json={
                    "name": "Synthetic Monitor", **credentials})
                answer = await self.call("POST", f"{shop.API}/auth/login", json=credentials)
            account.token, account.token_at = answer.json()["access_token"], time.monotonic()
        return {"Authorization": f"Bearer {account.token}"}


def _detail(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:200] or "(no body)"
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or body)[:200]
    return str(body)[:200]


# --- The journeys -----------------------------------------------------------------------

async def browse(journey: Journey) -> None:
    async with journey.step("home page"):
        await journey.call("GET", "/", headers={"Accept": "text/html"})
    async with journey.step("categories"):
        categories = (await journey.call("GET", f"{shop.API}/categories")).json()
        if not categories:
            raise JourneyFailed("the shop lists no categories")
    async with journey.step("product list"):
        page = (await journey.call("GET", f"{shop.API}/products",
                                   params={"category": categories[0]["slug"]})).json()
        if not page["items"]:
            raise JourneyFailed(f"category {categories[0]['slug']} lists no products")
    async with journey.step("search"):
        await journey.call("GET", f"{shop.API}/products", params={"q": shop.search_word()})
    async with journey.step("product"):
        product_id = page["items"][0]["id"]
        detail = (await journey.call("GET", f"{shop.API}/products/{{product_id}}",
                                     path=f"{shop.API}/products/{product_id}")).json()
        if detail.get("stock_status") == "unknown":
            raise JourneyFailed(f"product {product_id} shows no stock (inventory away?)")


async def checkout(journey: Journey) -> None:
    async with journey.step("log in"):
        auth = await journey.customer()
    async with journey.step("home page"):
        await journey.call("GET", "/", headers={"Accept": "text/html"})
    async with journey.step("product"):
        listing = (await journey.call("GET", f"{shop.API}/products",
                                      params={"limit": 100, "sort": "id"})).json()
        product_id = None
        for item in sorted(listing["items"], key=lambda _: uuid.uuid4().int)[:10]:
            detail = (await journey.call("GET", f"{shop.API}/products/{{product_id}}",
                                         path=f"{shop.API}/products/{item['id']}")).json()
            if detail["stock_status"] == "in_stock":
                product_id = detail["id"]
                break
        if product_id is None:
            raise JourneyFailed("no product with plenty in stock among ten looked at")
    async with journey.step("add to cart"):
        cart = (await journey.call("GET", f"{shop.API}/cart", headers=auth)).json()
        for line in cart["items"]:
            await journey.call("DELETE", f"{shop.API}/cart/items/{{product_id}}",
                               path=f"{shop.API}/cart/items/{line['product_id']}",
                               headers=auth)
        await journey.call("POST", f"{shop.API}/cart/items", headers=auth,
                           json={"product_id": product_id, "quantity": 1})
    async with journey.step("place order"):
        order = (await journey.call(
            "POST", f"{shop.API}/orders", expect=201, json={
                "shipping_address": shop.SHIPPING_ADDRESS},
            headers={**auth, "Idempotency-Key": uuid.uuid4().hex})).json()
    async with journey.step("pay"):
        await journey.call("POST", f"{shop.API}/payments", expect=201, headers=auth, json={
            "order_id": order["id"], "payment_method": "credit_card",
            "payment_details": shop.PAYING_CARD})
    async with journey.step("order paid"):
        placed = (await journey.call("GET", f"{shop.API}/orders/{{order_id}}",
                                     path=f"{shop.API}/orders/{order['id']}",
                                     headers=auth)).json()
        if placed["status"] != "paid":
            raise JourneyFailed(f"order {placed['number']} is {placed['status']} after "
                                "paying, not paid")


async def storefront(journey: Journey) -> None:
    monitor = journey.monitor
    try:
        await storefront_in_browser(journey.step, gateway=monitor.gateway,
                                    chromium=Path(monitor.chromium_path),
                                    timeout_seconds=monitor.request_timeout)
    except (JourneyFailed, JourneySkipped):
        raise
    except Exception as exc:
        # Playwright's own error before the first step: the browser did not start (a
        # broken install, missing libraries, no memory). Not the shop's failure, so no
        # failed run for the alerts to count every minute; said once, with the cause.
        if journey.steps or not type(exc).__module__.startswith("playwright"):
            raise
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        path = journey.monitor.chromium_path
        raise JourneySkipped(f"Chromium at {path} could not be started ({cause}): check "
                             f"that '{path} --headless --version' runs, or set "
                             "KANSOKU_SYNTHETICS_CHROMIUM_PATH") from exc


#: Journey name -> what one run does.
JOURNEYS: Final[dict[str, Callable[[Journey], Awaitable[None]]]] = {
    "browse": browse, "checkout": checkout, "storefront": storefront}


# --- Running them -----------------------------------------------------------------------

class Monitor:
    """Runs journeys against one gateway, with the telemetry each run records."""

    def __init__(self, gateway: str, telemetry: Telemetry, *, service_secret: str | None,
                 request_timeout: float = 15.0, chromium_path: str = "/usr/bin/chromium",
                 email: str = MONITOR_EMAIL) -> None:
        self.gateway = gateway.rstrip("/")
        self.tracer = trace.get_tracer("kansoku.synthetics", __version__,
                                       tracer_provider=telemetry.tracer_provider)
        meter = metrics.get_meter("kansoku.synthetics", __version__,
                                  meter_provider=telemetry.meter_provider)
        self.runs = meter.create_counter(
            semconv.METRIC_SYNTHETIC_RUNS, unit="{run}",
            description="Synthetic journey runs, by journey and outcome")
        # Every journey's series exist at 0 from the start: Prometheus's increase() counts
        # the first failure only as a change from a value it has already seen.
        for journey in JOURNEYS:
            for outcome in (SUCCESS, FAILURE):
                self.runs.add(0, {semconv.SYNTHETIC_JOURNEY: journey,
                                  semconv.SYNTHETIC_OUTCOME: outcome})
        self.duration = meter.create_histogram(
            semconv.METRIC_SYNTHETIC_DURATION, unit="s",
            description="How long a synthetic journey took, by journey and outcome",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS))
        self.account = MonitorAccount(service_secret, email)
        self.request_timeout = request_timeout
        self.chromium_path = chromium_path
        self.recent: deque[RunResult] = deque(maxlen=KEPT_RESULTS)

    async def run(self, name: str) -> RunResult:
        """Run journey `name` once; its trace, metrics and log record are recorded
        whatever the outcome."""
        started_at, started = time.time(), time.perf_counter()
        marked = context.attach(baggage.set_baggage(semconv.BAGGAGE_SYNTHETIC, shop.SYNTHETIC))
        try:
            with self.tracer.start_as_current_span(
                    f"synthetic {name}", attributes={semconv.SYNTHETIC_JOURNEY: name},
                    record_exception=False, set_status_on_exception=False) as root:
                trace_id = (format(root.get_span_context().trace_id, "032x")
                            if root.get_span_context().is_valid else None)
                timeout = httpx.Timeout(self.request_timeout, connect=5.0)
                async with httpx.AsyncClient(timeout=timeout, headers={
                        "User-Agent": f"kansoku-synthetics/{__version__}"}) as client:
                    journey = Journey(self, name, client)
                    outcome, error = SUCCESS, None
                    try:
                        await JOURNEYS[name](journey)
                    except JourneySkipped as exc:
                        outcome, error = SKIPPED, str(exc)
                    except JourneyFailed as exc:
                        outcome, error = FAILURE, str(exc)
                    except Exception as exc:  # a bug or a surprise: still a failed run
                        outcome, error = FAILURE, f"{type(exc).__name__}: {exc}"
                        root.record_exception(exc)
                result = RunResult(name, outcome, round(time.perf_counter() - started, 3),
                                   trace_id, started_at,
                                   journey.current_step if outcome == FAILURE else None,
                                   error, journey.steps)
                root.set_attribute(semconv.SYNTHETIC_OUTCOME, outcome)
                if outcome == FAILURE:
                    root.set_status(Status(StatusCode.ERROR, (error or "")[:200]))
                self._record(result)
        finally:
            context.detach(marked)
        self.recent.append(result)
        return result

    def _record(self, result: RunResult) -> None:
        """The run's metrics and its log record (inside the root span: the record
        carries the trace id)."""
        attributes = {semconv.SYNTHETIC_JOURNEY: result.journey,
                      semconv.SYNTHETIC_OUTCOME: result.outcome}
        extra = {semconv.SYNTHETIC_JOURNEY: result.journey,
                 semconv.SYNTHETIC_OUTCOME: result.outcome,
                 "duration_seconds": result.duration_seconds}
        if result.outcome == SKIPPED:
            # DEBUG: a schedule says it once (`run_forever`), `kansoku synth` in its table.
            logger.debug("synthetic %s skipped: %s", result.journey, result.error, extra=extra)
            return
        self.runs.add(1, attributes)
        self.duration.record(result.duration_seconds, attributes)
        if result.outcome == SUCCESS:
            logger.info("synthetic %s succeeded in %.2f s", result.journey,
                        result.duration_seconds, extra=extra)
        else:
            logger.error("synthetic %s failed at step %s after %.2f s: %s", result.journey,
                         result.step, result.duration_seconds, result.error, extra=extra)

    async def run_round(self, names: list[str]) -> list[RunResult]:
        """Each journey once, one after the other."""
        return [await self.run(name) for name in names]


async def run_forever(interval: float, monitor: Monitor, names: list[str]) -> None:
    """Run a round of `names` every `interval` seconds (from one round's start to the
    next's; a round that takes longer starts the next at once), until cancelled. A
    journey that reports itself skipped (no browser here) is said once, as a warning,
    and tried again every round: once `kansoku install-browser` has run, it runs."""
    said: dict[str, str | None] = {}
    while True:
        began = time.monotonic()
        try:
            results = await monitor.run_round(names)
        except Exception:
            # A journey's own failures are results; this is a bug in the runner. Said,
            # and the schedule goes on: a monitor that silently stopped would look
            # like a shop with nothing wrong.
            logger.exception("a round of synthetic journeys broke off; next round in %g s",
                             interval)
            results = []
        for result in results:
            skipped = result.error if result.outcome == SKIPPED else None
            if skipped and said.get(result.journey) != skipped:
                logger.warning("synthetic %s does not run: %s", result.journey, skipped)
            elif not skipped and said.get(result.journey):
                logger.info("synthetic %s runs again", result.journey)
            said[result.journey] = skipped
        await asyncio.sleep(max(0.0, interval - (time.monotonic() - began)))


# --- In the stack: `kansoku serve synthetics` ---------------------------------------------

def create_app(settings: Any = None, telemetry: Telemetry | None = None) -> Any:
    """The scheduled runner as a kansoku service: the schedule runs as a background
    task; `/health/ready`, `/metrics` and `GET /runs` (the latest results) are served."""
    # Imported here: the web app's machinery takes seconds to import, and `kansoku synth`
    # (a round on demand) needs none of it.
    from fastapi import FastAPI

    from kansoku.faults.catalogue import FLAG_KINDS
    from kansoku.kit.app import build_service_app, start_process_telemetry
    from kansoku.kit.flags import FaultFlags

    settings = settings or Settings()
    telemetry = telemetry or start_process_telemetry(SERVICE, settings)
    secret = settings.service_secret.get_secret_value() if settings.service_secret else None
    monitor = Monitor(settings.gateway_url, telemetry, service_secret=secret,
                      request_timeout=settings.request_timeout_seconds,
                      chromium_path=str(settings.chromium_path), email=SCHEDULE_EMAIL)

    async def schedule() -> None:
        await run_forever(settings.interval_seconds, monitor, settings.journey_names())

    app: FastAPI = build_service_app(
        service=SERVICE, settings=settings, telemetry=telemetry,
        fault_flags=FaultFlags(settings.flags_file, SERVICE, FLAG_KINDS),
        description="Synthetic monitors: scripted journeys through the shop on a schedule.",
        background=[schedule])

    @app.get("/runs", tags=["synthetics"])
    async def runs() -> dict[str, Any]:
        """The latest runs, newest first: journey, outcome, duration, trace id."""
        return {"data": [result.as_dict() for result in reversed(monitor.recent)]}

    return app


# --- Alone: python -m kansoku.loadgen.synthetics -----------------------------------------

def main() -> None:
    # Here, not at the top, for the reason create_app gives.
    from kansoku.kit.app import start_process_telemetry

    parser = argparse.ArgumentParser(
        prog="python -m kansoku.loadgen.synthetics",
        description="Run the synthetic journeys against a gateway, on a schedule.")
    parser.add_argument("--interval", type=float, default=None,
                        help="seconds between rounds (KANSOKU_SYNTHETICS_INTERVAL_SECONDS)")
    parser.add_argument("--once", action="store_true", help="one round, then exit")
    parser.add_argument("--journey", action="append", choices=JOURNEY_NAMES,
                        help="only this journey (repeatable)")
    arguments = parser.parse_args()
    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SystemExit(f"error: KANSOKU_SYNTHETICS_{str(first['loc'][0]).upper()} is not "
                         f"valid: {first['msg']} — fix or unset it") from None
    telemetry = start_process_telemetry(SERVICE, settings)
    secret = settings.service_secret.get_secret_value() if settings.service_secret else None
    monitor = Monitor(settings.gateway_url, telemetry, service_secret=secret,
                      request_timeout=settings.request_timeout_seconds,
                      chromium_path=str(settings.chromium_path),
                      email=MONITOR_EMAIL if arguments.once else SCHEDULE_EMAIL)
    names = arguments.journey or settings.journey_names()
    try:
        if arguments.once:
            results = asyncio.run(monitor.run_round(names))
            raise SystemExit(1 if any(r.outcome == FAILURE for r in results) else 0)
        asyncio.run(run_forever(arguments.interval or settings.interval_seconds, monitor,
                                names))
    except KeyboardInterrupt:
        pass
    finally:
        telemetry.shutdown()


if __name__ == "__main__":
    main()
