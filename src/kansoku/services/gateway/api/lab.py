"""The performance lab through the public API: `POST /api/v1/lab/{scenario}` and
`…/fixed` for `n-plus-one`, `slow-query` and `database-error`.

The gateway fills in the caller's `user_id` from the token and sends the seeds' request
on to the lab, with the trace context and the user in baggage — the seeds' "HTTP client
service" and "proxy endpoint". Each operation has a route of its own, so the gateway's
server spans tell a problem and its twin apart. A deliberate SQL error is the lab's 500
with `"status": "error"`, handed on as it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Final

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse, Response
from opentelemetry import trace

from kansoku.contracts.calls import Caller
from kansoku.contracts.clients import LabAnswer
from kansoku.kit import semconv
from kansoku.kit.auth import CurrentUser
from kansoku.kit.errors import Problem
from kansoku.kit.i18n import _
from kansoku.kit.openapi import PROBLEM
from kansoku.services.gateway.api.common import ApiCaller
from kansoku.services.gateway.api.schemas import (
    OPERATIONS,
    LabOperation,
    LabParameters,
    LabResult,
    LabRun,
    lab_run_model,
)
from kansoku.services.gateway.state import Gateway, GatewayDep

router = APIRouter(prefix="/lab", tags=["lab"])

_DESCRIPTIONS: Final[dict[str, str]] = {
    "n_plus_one": "Products with their order counts, one query per product: `limit` 20 "
                  "makes 21 statements (`data.query_count`).",
    "n_plus_one_fixed": "The same products and counts in one statement.",
    "slow_query": "A category's cheapest products after 3 to 5 s of `pg_sleep` in the "
                  "statement, or (`variant` `cartesian`, in a `category` or the first) from a "
                  "cartesian product.",
    "slow_query_fixed": "The same products from the indexed, bounded query.",
    "database_error": "A real SQL error: 500 with `\"status\": \"error\"` and PostgreSQL's "
                      "message (`variant` `missing-table` or `constraint`).",
    "database_error_fixed": "The same intents done right.",
}


async def run_in_lab(gateway: Gateway, operation: LabOperation, user_id: str,
                     parameters: LabParameters, caller: Caller) -> LabAnswer:
    """Send the seeds' request for `operation` to the lab, for `user_id` (with that
    user's token); the lab's answer, its error answers included. The request's span is
    named by the operation (`operation.type`)."""
    trace.get_current_span().set_attribute(semconv.OPERATION_TYPE, operation.name)
    return await gateway.clients.lab.run(caller, f"/scenarios{operation.suffix}", {
        "user_id": user_id, "operation": operation.name,
        "parameters": parameters.model_dump(exclude_none=True)})


def as_answer(answer: LabAnswer) -> Response:
    """The lab's answer with its own status (200, or a deliberate 500)."""
    return JSONResponse(answer.body, status_code=answer.status_code)


def _endpoint(operation: LabOperation) -> Callable[..., Awaitable[Response]]:
    model = lab_run_model(operation)

    async def run_operation(user: CurrentUser, caller: ApiCaller, gateway: GatewayDep,
                            run: Annotated[LabRun | None, Body()] = None) -> Response:
        run = run or model()
        if run.user_id is not None and run.user_id != user.user_id:
            raise Problem(403, "not-your-user-id",
                          _("user_id is not the user of the access token: leave it out, "
                            "the gateway fills it in."))
        return as_answer(await run_in_lab(gateway, operation, user.user_id,
                                          run.parameters, caller))

    # The body is this operation's own (its scenario's variants): the model is made per
    # operation, so it is set here.
    run_operation.__annotations__["run"] = Annotated[model | None, Body()]
    return run_operation


for _operation in OPERATIONS:
    router.add_api_route(
        _operation.suffix, _endpoint(_operation), methods=["POST"],
        response_model=LabResult, name=f"lab_{_operation.name}",
        summary=f"Lab: {_operation.name.replace('_', ' ')}",
        description=_DESCRIPTIONS[_operation.name] + " For a logged-in user; errors "
        "other than the operation's own are problem details.",
        responses={401: PROBLEM, 403: PROBLEM, 404: PROBLEM, 422: PROBLEM, 429: PROBLEM,
                   503: PROBLEM,
                   500: {"model": LabResult, "description": "The operation's SQL failed: "
                         "the answer says how (`\"status\": \"error\"`)"}})
