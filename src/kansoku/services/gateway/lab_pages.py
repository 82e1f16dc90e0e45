"""The performance lab through the gateway: the public API's `/api/v1/lab/…` and the
`/lab` page.

- `POST /api/v1/lab/{n-plus-one|slow-query|database-error}` and `…/fixed` (public API,
  a bearer token): the gateway fills in the caller's `user_id` from the token and sends
  the seeds' request on to the lab, with the trace context and the user in baggage
  (`kit.http`) — the seeds' "HTTP client service" and "proxy endpoint".
- `GET /lab`: a page with one button per problem and per fixed twin, showing what each
  answered (status, response time, statements, the trace in the explorer) and what to
  look for. Its script posts JSON to `POST /lab/run/…` with the session's CSRF token in
  `X-CSRF-Token`; without JavaScript, the forms post to `POST /lab/…` and the page
  comes back with the result.

Each operation has a route of its own, so the gateway's server spans tell a problem
and its twin apart too. The lab answers a deliberate SQL error with a 500 and the
seeds' error body, which every caller here passes on as it is.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

import httpx
from fastapi import APIRouter, Body, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kansoku.kit import semconv
from kansoku.kit.auth import CurrentUser
from kansoku.kit.errors import DependencyUnavailable, Problem
from kansoku.kit.http import BreakerPolicy, CircuitBreakers, ServiceClient, Timeouts
from kansoku.services.gateway.api import PROBLEM, limit_requests
from kansoku.services.gateway.service import as_response
from kansoku.services.gateway.sessions import (
    CSRF_FAILED,
    CsrfChecked,
    CustomerDep,
    WebSession,
    WebSessionDep,
    render,
)

logger = logging.getLogger(__name__)

#: How long the gateway waits for the lab's answer: longer than the lab lets any one
#: statement run (`KANSOKU_LAB_STATEMENT_TIMEOUT_SECONDS`, 15 s), so a slow query ends
#: as the lab's own answer, never as the gateway giving up first.
LAB_READ_TIMEOUT: Final = 30.0
#: The lab's deliberate SQL errors are 500s, which a circuit breaker counts as failures:
#: the lab's circuit opens only after this many in a row, not after five clicks on
#: "database error".
LAB_BREAKER: Final = BreakerPolicy(failure_threshold=20, open_seconds=5.0)
#: The header the page's script sends the session's CSRF token in.
CSRF_HEADER: Final = "X-CSRF-Token"
#: The N of N+1 the page suggests: the issue's acceptance runs it with 20.
PAGE_LIMIT: Final = 20


# --- the operations -------------------------------------------------------------------

@dataclass(frozen=True)
class LabOperation:
    """A lab operation as the gateway offers it: a scenario, as problem or fixed twin."""

    scenario: str
    fixed: bool

    @property
    def key(self) -> str:
        """`n-plus-one`, `n-plus-one-fixed`: names the page's result boxes."""
        return self.scenario + ("-fixed" if self.fixed else "")

    @property
    def name(self) -> str:
        """The seeds' operation name, `operation.type`: `n_plus_one`, `n_plus_one_fixed`."""
        return self.key.replace("-", "_")

    @property
    def suffix(self) -> str:
        return f"/{self.scenario}" + ("/fixed" if self.fixed else "")


SCENARIOS: Final = ("n-plus-one", "slow-query", "database-error")
OPERATIONS: Final = tuple(LabOperation(scenario, fixed) for scenario in SCENARIOS
                          for fixed in (False, True))


# --- the public contract ------------------------------------------------------------

class LabParameters(BaseModel):
    """What to run the operation on; every field has a default."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(10, ge=1, le=100, description="How many products (the N of N+1)")
    category: str | None = Field(None, min_length=1, max_length=64,
                                 pattern=r"^[a-z0-9][a-z0-9-]*$",
                                 description="A category's slug", examples=["telescopes"])
    variant: Literal["sleep", "cartesian", "missing-table", "constraint"] | None = Field(
        None, description="Slow query: `sleep` (3 to 5 s of pg_sleep, the default) or "
        "`cartesian` (needs a `category`); database error: `missing-table` (the default) "
        "or `constraint`")
    product_id: int | None = Field(None, ge=1, le=2**31 - 1,
                                   description="Database error, `constraint`: the product "
                                   "to save as a favourite")


class LabRun(BaseModel):
    """The seeds' request, less what the gateway knows: the user comes from the token."""

    model_config = ConfigDict(extra="forbid")

    user_id: str | None = Field(None, max_length=64,
                                description="Leave it out: the gateway fills it in. If "
                                "sent, it must be your own")
    parameters: LabParameters = Field(default_factory=LabParameters)


class LabData(BaseModel):
    results: list[dict[str, Any]]
    execution_time: float = Field(description="Seconds the operation took in the lab")
    query_count: int = Field(description="Statements the lab sent to PostgreSQL")


class LabError(BaseModel):
    type: str = Field(examples=["UndefinedTableError"])
    sqlstate: str | None = Field(examples=["42P01"])
    message: str


class LabResult(BaseModel):
    """The seeds' answer: `status`, `data`, `user_id`, `trace_id`, and what ran."""

    status: Literal["success", "error"]
    operation: str = Field(examples=["n_plus_one"])
    fixed: bool
    variant: str | None
    data: LabData
    error: LabError | None = None
    user_id: str
    trace_id: str | None = Field(description="Open it in the explorer: /traces/{trace_id}")


# --- calling the lab ----------------------------------------------------------------

def _new_lab_client(app: FastAPI) -> ServiceClient:
    settings = app.state.settings
    return ServiceClient(
        "lab", settings.lab_url, CircuitBreakers(LAB_BREAKER),
        timeouts=Timeouts(connect=settings.connect_timeout, read=LAB_READ_TIMEOUT),
        telemetry=app.state.telemetry)


def lab_client(app: FastAPI) -> ServiceClient:
    """The gateway's client of the lab, made on first use (and closed at shutdown)."""
    client: ServiceClient | None = getattr(app.state, "lab", None)
    if client is None:
        client = app.state.lab = _new_lab_client(app)
    return client


@asynccontextmanager
async def _lab_client_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Part of the gateway's lifespan (FastAPI merges an included router's): the lab's
    client is closed with the other clients."""
    try:
        yield
    finally:
        client: ServiceClient | None = getattr(app.state, "lab", None)
        if client is not None:
            await client.aclose()
            app.state.lab = None


def _lab_answer(exc: DependencyUnavailable) -> httpx.Response | None:
    """The lab's own answer inside a "lab unavailable", if it is one of the lab's error
    answers (a deliberate SQL error is a 500 with `"status": "error"`), else None.

    `kit.http` reports any 5xx as the dependency being unavailable, with the answer as
    its `response`; an error answer from the lab is its result, to show.
    """
    response = exc.response
    if not isinstance(response, httpx.Response):
        return None
    if not response.headers.get("content-type", "").startswith("application/json"):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return response if isinstance(body, dict) and body.get("status") == "error" else None


async def run_in_lab(app: FastAPI, operation: LabOperation, user_id: str,
                     parameters: LabParameters, authorization: dict[str, str]
                     ) -> httpx.Response:
    """Send the seeds' request for `operation` to the lab, for `user_id` (with that
    user's token); the lab's answer, its error answers included. Raises
    `DependencyUnavailable` when the lab cannot be reached or does not answer."""
    trace.get_current_span().set_attribute(semconv.OPERATION_TYPE, operation.name)
    body = {"user_id": user_id, "operation": operation.name,
            "parameters": parameters.model_dump(exclude_none=True)}
    try:
        return await lab_client(app).request("POST", f"/scenarios{operation.suffix}",
                                             json=body, headers=authorization)
    except DependencyUnavailable as exc:
        answer = _lab_answer(exc)
        if answer is None:
            raise
        return answer


# --- the public API ---------------------------------------------------------------------

api = APIRouter(prefix="/api/v1/lab", tags=["lab"], dependencies=[Depends(limit_requests)],
                responses={429: PROBLEM})

_API_DESCRIPTIONS: Final[dict[str, str]] = {
    "n_plus_one": "Products with their order counts, one query per product: `limit` 20 "
                  "makes 21 statements (`data.query_count`).",
    "n_plus_one_fixed": "The same products and counts in one statement.",
    "slow_query": "A category's cheapest products after 3 to 5 s of `pg_sleep` in the "
                  "statement, or (`variant` `cartesian`, with a `category`) from a "
                  "cartesian product.",
    "slow_query_fixed": "The same products from the indexed, bounded query.",
    "database_error": "A real SQL error: 500 with `\"status\": \"error\"` and PostgreSQL's "
                      "message (`variant` `missing-table` or `constraint`).",
    "database_error_fixed": "The same intents done right.",
}


def _api_endpoint(operation: LabOperation) -> Callable[..., Awaitable[Response]]:
    async def run_operation(user: CurrentUser, request: Request,
                            run: Annotated[LabRun | None, Body()] = None) -> Response:
        run = run or LabRun()
        if run.user_id is not None and run.user_id != user.user_id:
            raise Problem(403, "not-your-user-id",
                          "user_id is not the user of the access token: leave it out, "
                          "the gateway fills it in.")
        answer = await run_in_lab(request.app, operation, user.user_id, run.parameters,
                                  {"Authorization": request.headers["authorization"]})
        return as_response(answer)

    return run_operation


for _operation in OPERATIONS:
    api.add_api_route(
        _operation.suffix, _api_endpoint(_operation), methods=["POST"],
        response_model=LabResult, name=f"lab_{_operation.name}",
        summary=f"Lab: {_operation.name.replace('_', ' ')}",
        description=_API_DESCRIPTIONS[_operation.name] + " For a logged-in user; errors "
        "other than the operation's own are problem details.",
        responses={401: PROBLEM, 403: PROBLEM, 422: PROBLEM, 503: PROBLEM,
                   500: {"model": LabResult, "description": "The operation's SQL failed: "
                         "the answer says how (`\"status\": \"error\"`)"}})


# --- the page -------------------------------------------------------------------------

pages = APIRouter(include_in_schema=False)


async def _categories(request: Request) -> list[dict[str, Any]]:
    """The catalog's categories for the page's choices; none while the catalog is away
    (the lab does not need it: the page still works, without the choice)."""
    try:
        categories: list[dict[str, Any]] = await request.app.state.categories.get()
    except DependencyUnavailable as exc:
        logger.warning("the lab page shows no categories: %s", exc.reason)
        return []
    return categories


async def _lab_page(request: Request, *, results: dict[str, dict[str, Any]] | None = None,
                    values: dict[str, dict[str, str]] | None = None,
                    status_code: int = 200) -> Response:
    return render(request, "lab.html", {
        "categories": await _categories(request), "results": results or {},
        "values": values or {}, "page_limit": PAGE_LIMIT}, status_code=status_code)


@pages.get("/lab")
async def lab_page(request: Request, customer: CustomerDep) -> Response:
    """The lab: the problems and their fixes, one click each."""
    return await _lab_page(request)


def _shown(answer: httpx.Response, elapsed: float) -> dict[str, Any]:
    """What the page shows of an answer: the lab's JSON with the HTTP status and how long
    the gateway waited; a problem (the lab refused) as its status and sentence."""
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    shown: dict[str, Any] = {**body, "http_status": answer.status_code,
                             "round_trip_ms": round(elapsed * 1000, 1)}
    if "data" not in body:  # a problem, not one of the lab's answers
        shown.update(status="refused", detail=str(body.get("detail") or
                                                  f"The lab answered {answer.status_code}."))
    return shown


def _form_parameters(form: Any) -> tuple[LabParameters | None, dict[str, str], str | None]:
    """The form's parameters, what was typed (to show again), and what is wrong."""
    values = {name: value.strip() for name in ("limit", "category", "variant", "product_id")
              if isinstance(value := form.get(name), str) and value.strip()}
    try:
        return LabParameters.model_validate(values), values, None
    except ValidationError as exc:
        wrong = ", ".join(sorted({str(error["loc"][0]) for error in exc.errors()}))
        return None, values, f"Check {wrong}: " + exc.errors()[0]["msg"].lower() + "."


def _form_endpoint(operation: LabOperation) -> Callable[..., Awaitable[Response]]:
    async def run_from_form(request: Request, checked: CsrfChecked, customer: CustomerDep
                            ) -> Response:
        parameters, values, mistake = _form_parameters(await request.form())
        if parameters is None:
            shown = {"status": "refused", "detail": mistake, "http_status": 422}
            return await _lab_page(request, results={operation.key: shown},
                                   values={operation.scenario: values}, status_code=422)
        assert customer.user_id is not None
        started = time.perf_counter()
        answer = await run_in_lab(request.app, operation, customer.user_id, parameters,
                                  customer.auth_headers())
        shown = _shown(answer, time.perf_counter() - started)
        return await _lab_page(request, results={operation.key: shown},
                               values={operation.scenario: values})

    return run_from_form


async def _script_caller(request: Request, session: WebSessionDep) -> WebSession:
    """The page's script: a logged-in session (else 401, as JSON: a script cannot follow
    a login page) and its CSRF token in `X-CSRF-Token`."""
    if not session.logged_in:
        raise Problem(401, "login-required",
                      "You are not logged in any more: reload the page and log in.")
    sent = request.headers.get(CSRF_HEADER, "")
    if not (session.stored
            and secrets.compare_digest(sent.encode(), session.csrf_token.encode())):
        raise Problem(403, "csrf-failed", f"{CSRF_FAILED} Reload the page and try again.",
                      title="Form expired")
    return session


ScriptCaller = Annotated[WebSession, Depends(_script_caller)]


def _script_endpoint(operation: LabOperation) -> Callable[..., Awaitable[Response]]:
    async def run_from_script(
        request: Request, caller: ScriptCaller,
        parameters: Annotated[LabParameters | None, Body()] = None,
    ) -> Response:
        assert caller.user_id is not None
        answer = await run_in_lab(request.app, operation, caller.user_id,
                                  parameters or LabParameters(), caller.auth_headers())
        try:
            return as_response(answer)
        except ValueError:
            return JSONResponse({"status": "refused", "detail": "The lab's answer was "
                                 "not JSON."}, status_code=502)

    return run_from_script


for _operation in OPERATIONS:
    pages.add_api_route(f"/lab{_operation.suffix}", _form_endpoint(_operation),
                        methods=["POST"], dependencies=[Depends(limit_requests)],
                        name=f"lab_form_{_operation.name}")
    pages.add_api_route(f"/lab/run{_operation.suffix}", _script_endpoint(_operation),
                        methods=["POST"], dependencies=[Depends(limit_requests)],
                        name=f"lab_script_{_operation.name}")

#: What the gateway includes (`app.include_router(lab_pages.router)`): the API and the
#: page, and the lifespan that closes the lab's client.
router = APIRouter(lifespan=_lab_client_lifespan)
router.include_router(api)
router.include_router(pages)
