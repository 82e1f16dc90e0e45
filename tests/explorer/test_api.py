"""The explorer's query API answers bad parameters with a 400 that names the problem."""

from __future__ import annotations

import httpx
import pytest

from kansoku.explorer.app import create_app
from kansoku.explorer.settings import Settings


@pytest.mark.parametrize(("path", "field", "says"), [
    ("/api/traces?lookback=2x", "lookback", "lookback"),
    ("/api/traces?minDuration=fast", "minDuration", "minDuration"),
    ("/api/traces?tags=[1]", "tags", "tags must be a JSON object"),
    ("/api/traces?tags={nope", "tags", "tags"),
    ("/api/traces/zz", "trace_id", "trace_id"),
    ("/api/red/series?service=x&step=soon", "step", "step"),
])
async def test_bad_parameters_are_422_naming_the_problem(path: str, field: str, says: str
                                                         ) -> None:
    """Durations by the pattern the document states, a JSON object and a trace id by
    hand: each refused as FastAPI refuses a parameter, a 422 validation problem naming
    the field, as the document says."""
    app = create_app(Settings(db_path=":memory:"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://explorer") as http:
        answer = await http.get(path)
    app.state.store.close()
    assert answer.status_code == 422, answer.text
    assert says in answer.json()["detail"]
    assert answer.json()["errors"][0]["field"] == field
    assert answer.json()["request_id"]


async def test_jaeger_custom_lookback_and_empty_answers() -> None:
    app = create_app(Settings(db_path=":memory:"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://explorer") as http:
        custom = await http.get("/api/traces", params={"lookback": "custom",
                                                       "start": 1, "end": 2})
        services = await http.get("/api/services")
    app.state.store.close()
    assert custom.json()["data"] == [] and services.json()["data"] == []


def test_every_json_route_declares_its_response_model() -> None:
    """What each route answers is a model, which the OpenAPI document at /docs spells
    out (and an answer of another shape fails instead of reaching a page). The OTLP
    receivers answer OTLP's own protobuf messages and stay out of the document; pages
    answer HTML."""
    app = create_app(Settings(db_path=":memory:"))
    app.state.store.close()
    paths = {f"{method.upper()} {path}": operation
             for path, operations in app.openapi()["paths"].items() if path.startswith("/api/")
             for method, operation in operations.items()}
    assert len(paths) == 26, sorted(paths)
    untyped = [path for path, operation in paths.items()
               if "$ref" not in operation["responses"]["200"]["content"]["application/json"]
               ["schema"]]
    assert untyped == []
