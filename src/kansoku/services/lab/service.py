"""The lab's logic: run one operation — a problem or its fixed twin — for a user, and
tell what it cost.

Each run is one span, `lab <operation>`, the parent of every database span the run
causes; it and they carry `enduser.id` and `operation.type` (from baggage, see
`app.py`). The statements are counted as PostgreSQL receives them and timed on the
lab's clock. A database error is the answer, not a crash: recorded on the run's span
with the exception, logged with the user id, and answered in the seeds' error format.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry import baggage, context, metrics, trace
from opentelemetry.trace import Status, StatusCode, Tracer
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.kit import semconv
from kansoku.kit.auth import Principal
from kansoku.kit.errors import Problem
from kansoku.kit.i18n import _, ngettext
from kansoku.services.lab import store
from kansoku.services.lab.schemas import (
    VARIANTS,
    LabAnswer,
    LabData,
    LabError,
    LabRequest,
    Operation,
    Parameters,
)
from kansoku.services.lab.settings import Settings

logger = logging.getLogger(__name__)

_meter = metrics.get_meter("kansoku.lab")
_runs = _meter.create_counter(semconv.METRIC_LAB_RUNS, unit="{run}",
                              description="Lab operations run, per operation and outcome.")
_queries = _meter.create_histogram(
    semconv.METRIC_LAB_QUERIES, unit="{statement}",
    description="Statements one lab operation sent to PostgreSQL.",
    explicit_bucket_boundaries_advisory=[1, 2, 3, 5, 10, 20, 50, 100])

#: SQLSTATE classes that mean PostgreSQL could not be reached or dropped the connection
#: (class 08, connection exception): the lab is unavailable, not the query wrong.
_CONNECTION_TROUBLE: Final = "08"

Results = list[dict[str, Any]]
Runner = Callable[["Run"], Awaitable[Results]]


@dataclass(frozen=True)
class Run:
    """What one operation runs with."""

    session: AsyncSession
    parameters: Parameters
    variant: str | None
    user_id: str
    settings: Settings


class Lab:
    """The lab's operations. One per app: it holds the tracer its runs' spans come from
    and the limit on slow queries running at once."""

    def __init__(self, settings: Settings, tracer: Tracer) -> None:
        self.settings = settings
        self.tracer = tracer
        self._slow_queries = asyncio.Semaphore(settings.max_concurrent_slow_queries)

    async def run(self, session: AsyncSession, operation: Operation, request: LabRequest,
                  user: Principal) -> tuple[int, LabAnswer]:
        """Run `operation` for `user`; the HTTP status and the answer.

        Raises a `Problem` for a request that cannot run (someone else's user id, an
        operation or variant that does not fit the URL, too many slow queries at once).
        """
        user_id = _checked_user(request, user)
        variant = _checked_variant(operation, request.parameters)
        attributes: dict[str, Any] = {
            semconv.ENDUSER_ID: user_id,
            semconv.OPERATION_TYPE: operation.name,
            semconv.LAB_FIXED: operation.fixed,
        }
        if variant is not None:
            attributes[semconv.LAB_VARIANT] = variant
        # The server span began before the route knew the operation: name it here.
        trace.get_current_span().set_attributes(attributes)
        # In baggage, for every span that starts from here on (the database's too).
        attached = context.attach(baggage.set_baggage(
            semconv.OPERATION_TYPE, operation.name,
            baggage.set_baggage(semconv.BAGGAGE_USER_ID, user_id)))
        try:
            if operation.scenario == "slow-query" and not operation.fixed:
                if self._slow_queries.locked():
                    most = self.settings.max_concurrent_slow_queries
                    raise Problem(429, "lab-busy",
                                  ngettext("{count} slow query is running already. Try "
                                           "again in a few seconds.",
                                           "{count} slow queries are running already. Try "
                                           "again in a few seconds.", most).format(count=most),
                                  headers={"Retry-After": "5"})
                async with self._slow_queries:
                    return await self._traced(session, operation, variant, request, user_id,
                                              attributes)
            return await self._traced(session, operation, variant, request, user_id,
                                      attributes)
        finally:
            context.detach(attached)

    async def _traced(self, session: AsyncSession, operation: Operation, variant: str | None,
                      request: LabRequest, user_id: str, attributes: dict[str, Any]
                      ) -> tuple[int, LabAnswer]:
        runner = _RUNNERS[(operation.scenario, operation.fixed)]
        run = Run(session, request.parameters, variant, user_id, self.settings)
        status, results, error = 200, [], None
        count = store.QueryCount()
        with self.tracer.start_as_current_span(f"lab {operation.name}",
                                               attributes=attributes,
                                               record_exception=False,
                                               set_status_on_exception=False) as span:
            started = time.perf_counter()
            try:
                async with store.counting_queries(session, count):
                    results = await runner(run)
            except DBAPIError as exc:
                elapsed = time.perf_counter() - started
                # The failed statement aborted the transaction: end it, so the request's
                # session closes cleanly (nothing of this run is kept).
                await session.rollback()
                error = _error_of(exc)
                status = 503 if _lost_connection(exc, error) else 500
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{error.type}: {error.message}"))
                logger.error("lab operation %s failed for user %s: %s (SQLSTATE %s)",
                             operation.name, user_id, error.message, error.sqlstate,
                             exc_info=exc, extra={"operation": operation.name,
                                                  "sqlstate": error.sqlstate})
            else:
                elapsed = time.perf_counter() - started
            span.set_attribute(semconv.LAB_QUERY_COUNT, count.value)
        outcome = "error" if error else "success"
        _runs.add(1, {semconv.OPERATION_TYPE: operation.name, semconv.LAB_OUTCOME: outcome})
        _queries.record(count.value, {semconv.OPERATION_TYPE: operation.name})
        logger.info("lab operation %s for user %s: %s, %d statements in %.3f s",
                    operation.name, user_id, outcome, count.value, elapsed,
                    extra={"operation": operation.name, "query_count": count.value})
        span_context = span.get_span_context()
        answer = LabAnswer(
            status=outcome, operation=operation.name, fixed=operation.fixed, variant=variant,
            data=LabData(results=results, execution_time=round(elapsed, 4),
                         query_count=count.value),
            error=error, user_id=user_id,
            trace_id=format(span_context.trace_id, "032x") if span_context.is_valid else None)
        return status, answer


def _checked_user(request: LabRequest, user: Principal) -> str:
    """The user the run is for: the token's. A request naming another user is refused,
    so nobody can act, or appear in traces, as someone else."""
    if user.is_service:
        # Only a program meets this one (a service's token; people come through the
        # gateway with their own): it stays English.
        raise Problem(403, "users-only", "The lab runs operations for users: call it with "
                      "a user's access token.")
    if request.user_id is not None and request.user_id != user.user_id:
        raise Problem(403, "not-your-user-id",
                      _("The request's user_id is not the user of the access token: send "
                        "your own, or leave it out."))
    return user.user_id


def _checked_variant(operation: Operation, parameters: Parameters) -> str | None:
    """The variant to run: the one asked for, else the scenario's default. (Each
    scenario's route takes only its own variants: `schemas.PARAMETERS`.)"""
    variants = VARIANTS[operation.scenario]
    asked: str | None = getattr(parameters, "variant", None)
    return asked or (variants[0] if variants else None)


def _error_of(exc: DBAPIError) -> LabError:
    """The driver's error, in PostgreSQL's words: the exception class, SQLSTATE and the
    message's first line (the statement and its parameters are on the span, not here)."""
    original = exc.orig
    cause = original.__cause__ if original is not None else None
    driver_error = cause if cause is not None else original
    message = str(driver_error or exc).strip().splitlines() or [type(exc).__name__]
    sqlstate = getattr(original, "sqlstate", None) or getattr(driver_error, "sqlstate", None)
    return LabError(type=type(driver_error or exc).__name__,
                    sqlstate=str(sqlstate) if sqlstate else None, message=message[0][:500])


def _lost_connection(exc: DBAPIError, error: LabError) -> bool:
    return bool(exc.connection_invalidated) or (
        error.sqlstate is not None and error.sqlstate.startswith(_CONNECTION_TROUBLE))


# --- the operations -------------------------------------------------------------------

async def _n_plus_one(run: Run) -> Results:
    """One query for the page of products, then one more per product for its orders."""
    products = await store.products_page(run.session, limit=run.parameters.limit,
                                         category=run.parameters.category)
    for product in products:
        product["order_count"] = await store.orders_of_product(run.session, product["id"])
    return products


async def _n_plus_one_fixed(run: Run) -> Results:
    """One statement: the page of products joined to their order counts."""
    return await store.products_with_order_counts(
        run.session, limit=run.parameters.limit, category=run.parameters.category)


async def _slow_query(run: Run) -> Results:
    """A category's cheapest products, slowly: after 3 to 5 s of `pg_sleep` in the same
    statement, or from a cartesian product."""
    if run.variant == "cartesian":
        # One category: all of the demo catalog would be 200³ = 8 million rows, seconds
        # of a CPU per click for what one category shows as well.
        category = run.parameters.category or await store.first_category(run.session)
        if category is None:
            raise Problem(404, "no-products",
                          _("There are no categories to pair products in."))
        return await store.cheapest_products_cartesian(
            run.session, limit=run.parameters.limit, category=category)
    # Not for security: how long to pause is no secret.
    seconds = random.uniform(run.settings.slow_query_min_seconds,  # noqa: S311
                             run.settings.slow_query_max_seconds)
    return await store.cheapest_products_paused(
        run.session, seconds=round(seconds, 3), limit=run.parameters.limit,
        category=run.parameters.category)


async def _slow_query_fixed(run: Run) -> Results:
    """The same answer from the indexed, bounded query."""
    return await store.cheapest_products(run.session, limit=run.parameters.limit,
                                         category=run.parameters.category)


async def _product_to_save(run: Run) -> int:
    if run.parameters.product_id is not None:
        return run.parameters.product_id
    found = await store.first_product_id(run.session, run.parameters.category)
    if found is None:
        raise Problem(404, "no-products", _("There is no product to save as a favourite (is "
                                            "the catalog empty, or the category unknown?)."))
    return found


async def _database_error(run: Run) -> Results:
    """`missing-table`: read a table that was never created. `constraint`: a
    double-submitted "save as favourite" — the same INSERT twice, and the second breaks
    the primary key."""
    if run.variant == "constraint":
        product_id = await _product_to_save(run)
        for _twice in range(2):
            await store.insert_favourite(run.session, run.user_id, product_id)
        return await store.favourites(run.session, run.user_id, [product_id])
    return await store.order_summary_from_missing_table(run.session, run.user_id)


async def _database_error_fixed(run: Run) -> Results:
    """The same intents done right: the summary from the orders themselves; saving a
    favourite twice is saving it once."""
    if run.variant == "constraint":
        product_id = await _product_to_save(run)
        for _twice in range(2):
            await store.save_favourite(run.session, run.user_id, product_id)
        return await store.favourites(run.session, run.user_id, [product_id])
    return await store.order_summary(run.session, run.user_id)


_RUNNERS: Final[dict[tuple[str, bool], Runner]] = {
    ("n-plus-one", False): _n_plus_one,
    ("n-plus-one", True): _n_plus_one_fixed,
    ("slow-query", False): _slow_query,
    ("slow-query", True): _slow_query_fixed,
    ("database-error", False): _database_error,
    ("database-error", True): _database_error_fixed,
}
