"""The lab's routes: `POST /scenarios/{scenario}` runs a problem, `…/fixed` its twin.

Each operation has a route of its own (not one route with a path parameter), so each
has its own server span name, `POST /scenarios/n-plus-one`, and its own series in the
request metrics: a problem and its twin are told apart everywhere. The gateway fronts
them as `POST /api/v1/lab/…`; here a user's access token is needed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse

from kansoku.kit.auth import CurrentUser
from kansoku.kit.db import DbSession
from kansoku.kit.http import CALLER_REQUESTED_ERROR_HEADER
from kansoku.kit.openapi import PROBLEM
from kansoku.services.lab.schemas import (
    OPERATIONS,
    LabAnswer,
    LabRequest,
    Operation,
    request_model,
)
from kansoku.services.lab.service import Lab

router = APIRouter(tags=["scenarios"])

#: The OpenAPI text of each operation.
_DESCRIPTIONS: Final[dict[str, str]] = {
    "n_plus_one": "Products with their order counts, the N+1 way: one query for the page "
                  "of products, then one per product (`limit` 20 makes 21).",
    "n_plus_one_fixed": "The same products and counts from one statement (a join and an "
                        "aggregate).",
    "slow_query": "A category's cheapest products, slowly: `variant` `sleep` (default) "
                  "pauses 3 to 5 s inside the statement, `cartesian` (for a `category`) "
                  "builds a cartesian product and folds it back with DISTINCT.",
    "slow_query_fixed": "The same products from the indexed, bounded query.",
    "database_error": "A real SQL error, answered 500 with `\"status\": \"error\"`: "
                      "`variant` `missing-table` (default) reads a table that does not "
                      "exist, `constraint` inserts the same favourite twice.",
    "database_error_fixed": "The same intents done right: the order summary from the "
                            "orders themselves; a favourite saved twice is saved once.",
}

#: Answers besides 200, for the OpenAPI document.
_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    403: PROBLEM, 404: PROBLEM, 429: PROBLEM,
    500: {"model": LabAnswer, "description": "The operation's SQL failed (the answer says "
          "how, with `\"status\": \"error\"`)"},
}


def _endpoint(operation: Operation) -> Callable[..., Awaitable[JSONResponse]]:
    model = request_model(operation)

    async def run_operation(
        user: CurrentUser, session: DbSession, request: Request,
        body: Annotated[LabRequest | None, Body()] = None,
    ) -> JSONResponse:
        lab: Lab = request.app.state.lab
        status, answer = await lab.run(session, operation, body or model(), user)
        # A SQL error of the operation's own is the lab working as asked: its callers'
        # circuit breakers must not count it (kit.http). Losing the database (503) is
        # a real failure, and left unmarked.
        headers = {CALLER_REQUESTED_ERROR_HEADER: "true"} if status == 500 else None
        return JSONResponse(answer.model_dump(mode="json"), status_code=status,
                            headers=headers)

    # The body is this operation's own request (its variants, its name): set here, as
    # the model is made per operation.
    run_operation.__annotations__["body"] = Annotated[model | None, Body()]
    return run_operation


for _operation in OPERATIONS:
    router.add_api_route(
        _operation.path, _endpoint(_operation), methods=["POST"], response_model=LabAnswer,
        responses=_RESPONSES, name=_operation.name,
        summary=_operation.name.replace("_", " ").capitalize(),
        description=_DESCRIPTIONS[_operation.name])
