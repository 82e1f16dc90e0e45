"""`GET /api/problems`: its filters, bad parameters as problem+json, one trace's problems
with their spans, and its description in the OpenAPI document."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from kansoku.explorer.app import create_app
from tests.explorer.problems.test_problems import Explorer, TraceBuilder, n_plus_one, quick_settings
from tests.support import serve_in_thread

HOUR_NS = 3600 * 10**9


@pytest.fixture(scope="module")
def explorer() -> Iterator[Explorer]:
    with serve_in_thread(create_app(quick_settings()), lifespan="on") as base:
        running = Explorer(base)
        # Two services' problems now, and one of two hours ago.
        slow = TraceBuilder()
        root = slow.request("/report", service="billing", ms=900)
        slow.query("SELECT * FROM invoices", parent=root, at=1, ms=800)
        old = n_plus_one("archive")
        for _, span in old.spans:
            span.start_time_unix_nano -= 2 * HOUR_NS
            span.end_time_unix_nano -= 2 * HOUR_NS
        running.checked(n_plus_one("billing"), slow, n_plus_one("shipping"), old)
        running.eventually(service="archive", lookback="1d")
        yield running
        running.http.close()


def test_filters_by_service_kind_and_lookback(explorer: Explorer) -> None:
    everything = explorer.problems()
    assert {(p["service"], p["kind"]) for p in everything} == {
        ("billing", "n-plus-one-db"), ("billing", "slow-db-query"),
        ("shipping", "n-plus-one-db"), ("archive", "n-plus-one-db")}
    # Most recently seen first.
    assert [p["last_seen_ns"] for p in everything] == sorted(
        (p["last_seen_ns"] for p in everything), reverse=True)
    assert {p["kind"] for p in explorer.problems(service="billing")} == {
        "n-plus-one-db", "slow-db-query"}
    assert [p["service"] for p in explorer.problems(service="billing", kind="slow-db-query")
            ] == ["billing"]
    assert {p["service"] for p in explorer.problems(kind="n-plus-one-db", lookback="1h")
            } == {"billing", "shipping"}
    assert explorer.problems(service="nobody") == []


def test_a_traces_problems_come_with_their_spans(explorer: Explorer) -> None:
    (example,) = explorer.problems(service="billing", kind="slow-db-query")
    (in_trace,) = explorer.problems(trace_id=example["example_trace_id"])
    assert in_trace["fingerprint"] == example["fingerprint"]
    assert len(in_trace["span_ids"]) == 1 and in_trace["occurrences"] == 1
    assert "span_ids" not in example or example["span_ids"] is None
    assert explorer.problems(trace_id="f" * 32) == []


def test_bad_parameters_are_problem_details(explorer: Explorer) -> None:
    for query, field in (({"kind": "n-plus-two"}, "kind"), ({"lookback": "soon"}, "lookback"),
                         ({"trace_id": "xyz"}, "trace_id")):
        answer = explorer.http.get("/api/problems", params=query)
        assert answer.status_code == 422, query
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["errors"][0]["field"] == field


def test_the_openapi_document_describes_it(explorer: Explorer) -> None:
    document = explorer.http.get("/openapi.json").json()
    operation = document["paths"]["/api/problems"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {
        "service", "kind", "lookback", "trace_id", "limit"}
    schema = document["components"]["schemas"]["Problem"]
    assert {"kind", "service", "operation", "statement", "route", "example_trace_id",
            "first_seen_ns", "last_seen_ns", "occurrences", "impact", "explanation", "fix",
            } <= set(schema["properties"])


def test_stats_say_how_far_detection_got(explorer: Explorer) -> None:
    stats = explorer.detection()
    assert stats["traces_checked"] >= 4 and stats["occurrences_recorded"] >= 4
    assert time.time_ns() - stats["last_check_ns"] < 10 * 10**9
