"""A small service built with the kit, for testing the kit in-process."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import FastAPI, Query
from pydantic import BaseModel, Field

from kansoku.kit.app import build_service_app
from kansoku.kit.errors import DependencyUnavailable, Problem
from kansoku.kit.fields import Int32, Text
from kansoku.kit.flags import FaultFlags
from kansoku.kit.health import Check
from kansoku.kit.settings import ServiceSettings
from kansoku.kit.telemetry import Telemetry


class Item(BaseModel):
    name: Text = Field(min_length=1)
    quantity: Int32


def make_app(checks: Mapping[str, Check] | None = None, timeout: float = 0.5, *,
             problems_in_readers_language: bool = False) -> FastAPI:
    settings = ServiceSettings(port=9, readiness_timeout_seconds=timeout)
    app = build_service_app(service="probe", settings=settings, telemetry=Telemetry("probe"),
                            fault_flags=FaultFlags(None, "probe", {}),
                            description="test service", checks=checks,
                            problems_in_readers_language=problems_in_readers_language)

    @app.get("/items")
    async def items(limit: Annotated[int, Query(ge=1, le=10)] = 5) -> dict[str, int]:
        return {"limit": limit}

    @app.post("/items", status_code=201)
    async def add_item(item: Item) -> Item:
        return item

    @app.get("/teapot")
    async def teapot() -> None:
        raise Problem(418, "teapot", "This endpoint only brews tea.", flavour="sencha")

    @app.get("/away")
    async def away() -> None:
        raise DependencyUnavailable("warehouse", "no answer in time")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail: db password is hunter2")

    return app
