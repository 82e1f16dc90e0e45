"""The lab on a running stack, through the gateway's public API: each problem and its
fixed twin answer for the caller, with a trace the explorer has; the lab's spans in it
name the user and the operation; the deliberate error is logged with the user id."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from tests.stack.test_up import RunningStack
from tests.support import eventually, new_customer

pytestmark = pytest.mark.stack

#: Each operation, what it is sent, and its `operation.type`.
RUNS: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("n-plus-one", {"limit": 20}, "n_plus_one"),
    ("n-plus-one/fixed", {"limit": 20}, "n_plus_one_fixed"),
    ("slow-query", {"limit": 5, "category": "telescopes"}, "slow_query"),
    ("slow-query/fixed", {"limit": 5, "category": "telescopes"}, "slow_query_fixed"),
    ("database-error", {}, "database_error"),
    ("database-error/fixed", {}, "database_error_fixed"),
)


def tags(span: dict[str, Any]) -> dict[str, Any]:
    return {tag["key"]: tag["value"] for tag in span["tags"]}


async def test_every_lab_answer_names_the_caller_and_a_trace_in_the_explorer(
        web_shop: RunningStack) -> None:
    gateway = web_shop.url("gateway")
    explorer = web_shop.url("explorer")
    email, password = await new_customer(gateway, "Lab Rat")
    async with httpx.AsyncClient(base_url=f"{gateway}/api/v1", timeout=60) as client:
        tokens = (await client.post("/auth/login", json={"email": email,
                                                         "password": password})).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        user_id = (await client.get("/users/me", headers=headers)).json()["id"]
        answers: dict[str, tuple[httpx.Response, float]] = {}
        for path, parameters, _ in RUNS:
            started = time.monotonic()
            answer = await client.post(f"/lab/{path}", headers=headers,
                                       json={"parameters": parameters})
            answers[path] = (answer, time.monotonic() - started)

    def body(path: str) -> dict[str, Any]:
        found: dict[str, Any] = answers[path][0].json()
        return found

    assert body("n-plus-one")["data"]["query_count"] >= 21
    assert body("n-plus-one/fixed")["data"]["query_count"] <= 2
    assert answers["slow-query"][1] >= 3.0
    assert body("slow-query")["data"]["execution_time"] >= 3.0
    assert answers["slow-query/fixed"][1] < 3.0
    assert answers["database-error"][0].status_code == 500
    assert body("database-error")["status"] == "error"
    for path, _, operation in RUNS:
        result = body(path)
        if path != "database-error":
            assert answers[path][0].status_code == 200, (path, result)
            assert result["status"] == "success", path
        assert result["operation"] == operation
        assert result["user_id"] == user_id, path

    async with httpx.AsyncClient(base_url=explorer, timeout=10) as client:
        for path, _, operation in RUNS:
            trace_id = body(path)["trace_id"]
            found: dict[str, Any] = {}

            async def arrived(trace_id: str = trace_id, found: dict[str, Any] = found,
                              operation: str = operation) -> bool:
                """The trace is in the explorer with the gateway's and the lab's spans,
                the run's own span (which ends last in the lab) among them."""
                answer = await client.get(f"/api/traces/{trace_id}")
                if answer.status_code != 200:
                    return False
                (trace,) = answer.json()["data"]
                services = {process["serviceName"] for process in trace["processes"].values()}
                names = {span["operationName"] for span in trace["spans"]}
                found.update(trace)
                return {"gateway", "lab"} <= services and f"lab {operation}" in names

            await eventually(arrived, 30, f"the trace of {path} in the explorer")
            lab_process = next(key for key, process in found["processes"].items()
                               if process["serviceName"] == "lab")
            lab_spans = [span for span in found["spans"] if span["processID"] == lab_process]
            statements = [span for span in lab_spans if "db.statement" in tags(span)]
            assert statements, f"{path}: the lab's database spans are in the trace"
            for span in lab_spans:
                assert tags(span).get("enduser.id") == user_id, (path, span["operationName"])
                assert tags(span).get("operation.type") == operation, (path,
                                                                       span["operationName"])
            if path == "n-plus-one":
                assert len(statements) >= 21
            if path == "database-error":
                assert tags(next(span for span in lab_spans
                                 if span["operationName"] == f"lab {operation}"))["error"]

    # The deliberate error, in the lab's log with the user's id and the trace's.
    log = (web_shop.data_dir / "logs" / "lab.log").read_text()
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    failures = [record for record in records if record.get("level") == "ERROR"
                and "database_error" in record.get("message", "")]
    assert any(record.get("user_id") == user_id
               and record.get("trace_id") == body("database-error")["trace_id"]
               for record in failures), failures[-3:]
