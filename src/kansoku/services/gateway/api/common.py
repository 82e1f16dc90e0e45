"""What every route of the public API shares: who it calls the services for, and the
OpenAPI description of its problems."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import Depends, Request

from kansoku.services.gateway.clients import Bearer

#: A problem answer, for the OpenAPI document.
PROBLEM: Final[dict[str, Any]] = {"content": {"application/problem+json": {}}}


async def _caller(request: Request) -> Bearer:
    # async: FastAPI runs a plain function dependency in a thread pool.
    return Bearer.of(request)


#: A route parameter: the API caller, whose `Authorization` header goes along to the
#: services (each checks the token itself).
ApiCaller = Annotated[Bearer, Depends(_caller)]
