"""The performance lab's page, `/lab`: one button per problem and per fixed twin,
showing what each answered (status, response time, statements, the trace in the
explorer) and what to look for.

Its script posts JSON to `POST /lab/run/…` with the session's CSRF token in
`X-CSRF-Token`; without JavaScript, the forms post to `POST /lab/…` and the page comes
back with the result. Both run the operation as the public API does
(`api/lab.py`), for the logged-in customer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Final

from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError

from kansoku.contracts.calls import Json, Refused
from kansoku.kit.errors import DependencyUnavailable
from kansoku.kit.i18n import _
from kansoku.services.gateway.api.lab import as_answer, run_in_lab
from kansoku.services.gateway.api.schemas import (
    LAB_PARAMETERS,
    OPERATIONS,
    LabOperation,
    LabParameters,
)
from kansoku.services.gateway.state import Gateway, GatewayDep, limit_requests
from kansoku.services.gateway.web.auth import CsrfChecked, CustomerDep, ScriptCaller
from kansoku.services.gateway.web.rendering import render

logger = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)

#: The N of N+1 the page suggests: the issue's acceptance runs it with 20.
PAGE_LIMIT: Final = 20


async def _categories(gateway: Gateway) -> list[Json]:
    """The catalog's categories for the page's choices; none while the catalog is away
    (the lab does not need it: the page still works, without the choice)."""
    try:
        return await gateway.shop.categories.get()
    except DependencyUnavailable as exc:
        logger.warning("the lab page shows no categories: %s", exc.reason)
        return []


async def _lab_page(request: Request, gateway: Gateway, *,
                    results: dict[str, dict[str, Any]] | None = None,
                    values: dict[str, dict[str, str]] | None = None,
                    status_code: int = 200) -> Response:
    return render(request, "lab.html", {
        "categories": await _categories(gateway), "results": results or {},
        "values": values or {}, "page_limit": PAGE_LIMIT}, status_code=status_code)


@router.get("/lab")
async def lab_page(request: Request, customer: CustomerDep, gateway: GatewayDep
                   ) -> Response:
    """The lab: the problems and their fixes, one click each."""
    return await _lab_page(request, gateway)


def _shown(status_code: int, body: Json, elapsed: float) -> dict[str, Any]:
    """What the page shows of an answer: the lab's JSON with the HTTP status and how long
    the gateway waited; a problem (the lab refused) as its status and sentence."""
    shown: dict[str, Any] = {**body, "http_status": status_code,
                             "round_trip_ms": round(elapsed * 1000, 1)}
    if "data" not in body:  # a problem, not one of the lab's answers
        shown.update(status="refused", detail=str(
            body.get("detail") or _("The lab answered {status}.").format(status=status_code)))
    return shown


def _form_parameters(form: Any, operation: LabOperation
                     ) -> tuple[LabParameters | None, dict[str, str], str | None]:
    """The form's parameters, what was typed (to show again), and what is wrong."""
    values = {name: value.strip() for name in ("limit", "category", "variant", "product_id")
              if isinstance(value := form.get(name), str) and value.strip()}
    try:
        return LAB_PARAMETERS[operation.scenario].model_validate(values), values, None
    except ValidationError as exc:
        wrong = ", ".join(sorted({str(error["loc"][0]) for error in exc.errors()}))
        return None, values, _("Check {fields}: {problem}.").format(
            fields=wrong, problem=exc.errors()[0]["msg"].lower())


def _form_endpoint(operation: LabOperation) -> Callable[..., Awaitable[Response]]:
    async def run_from_form(request: Request, checked: CsrfChecked, customer: CustomerDep,
                            gateway: GatewayDep) -> Response:
        parameters, values, mistake = _form_parameters(await request.form(), operation)
        if parameters is None:
            shown = {"status": "refused", "detail": mistake, "http_status": 422}
            return await _lab_page(request, gateway, results={operation.key: shown},
                                   values={operation.scenario: values}, status_code=422)
        assert customer.user_id is not None
        started = time.perf_counter()
        try:
            answer = await run_in_lab(gateway, operation, customer.user_id, parameters,
                                      customer)
            status_code, body = answer.status_code, answer.body
        except Refused as refused:
            status_code, body = refused.status, refused.body
        shown = _shown(status_code, body, time.perf_counter() - started)
        return await _lab_page(request, gateway, results={operation.key: shown},
                               values={operation.scenario: values})

    return run_from_form


def _script_endpoint(operation: LabOperation) -> Callable[..., Awaitable[Response]]:
    model = LAB_PARAMETERS[operation.scenario]

    async def run_from_script(
        caller: ScriptCaller, gateway: GatewayDep,
        parameters: Annotated[LabParameters | None, Body()] = None,
    ) -> Response:
        assert caller.user_id is not None
        return as_answer(await run_in_lab(gateway, operation, caller.user_id,
                                          parameters or model(), caller))

    # The scenario's own parameters (its variants): the model is picked per operation.
    run_from_script.__annotations__["parameters"] = Annotated[model | None, Body()]
    return run_from_script


for _operation in OPERATIONS:
    router.add_api_route(f"/lab{_operation.suffix}", _form_endpoint(_operation),
                         methods=["POST"], dependencies=[Depends(limit_requests)],
                         name=f"lab_form_{_operation.name}")
    router.add_api_route(f"/lab/run{_operation.suffix}", _script_endpoint(_operation),
                         methods=["POST"], dependencies=[Depends(limit_requests)],
                         name=f"lab_script_{_operation.name}")
