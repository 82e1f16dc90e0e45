"""What every route of the public API shares: who it calls the services for."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from kansoku.contracts.calls import Bearer


async def _caller(request: Request) -> Bearer:
    # async: FastAPI runs a plain function dependency in a thread pool.
    return Bearer.of(request)


#: A route parameter: the API caller, whose `Authorization` header goes along to the
#: services (each checks the token itself).
ApiCaller = Annotated[Bearer, Depends(_caller)]
