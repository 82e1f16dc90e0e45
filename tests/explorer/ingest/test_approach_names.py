"""The signal matrix's name map (`tests/stack/signal_matrix.NAMES`) is what the explorer's
intakes do: each vendor field the map names, sent through that vendor's intake, is
stored under the attribute the map says — so the benchmark's share of the matrix per
approach (benchmarks/approaches.py) looks where the explorer puts things."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from kansoku.explorer.ingest import newrelic, xray
from kansoku.explorer.store import SPANS, Rows
from kansoku.kit import semconv
from kansoku.kit.approaches import Instrumentation
from tests.stack.signal_matrix import NAMES, VendorName, carries, stored_name

TRACE_ID = "5759e988bd862e3fe1be46a994272793"
#: A value for each field that must be of a kind of its own; any other gets a string.
VALUES: dict[str, Any] = {"http.response.status": 200, "http.statusCode": 200,
                          "http.request.url": "https://shop.example/api/v1/products/7",
                          "component": "Postgres"}


def _names(approach: Instrumentation) -> dict[str, VendorName]:
    return {attribute: name for attribute, names in NAMES.items()
            if (name := names.get(approach)) is not None}


def _put(document: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".", 2) if path.startswith("http.") else path.split(".", 1)
    for parent in parents:
        document = document.setdefault(parent, {})
    document[leaf] = value


def _attributes(rows: Rows) -> list[dict[str, Any]]:
    column = rows.values[SPANS.names.index("attributes")]
    return [json.loads(text) for text in column]


def test_every_xray_field_of_the_map_is_stored_where_the_map_says() -> None:
    """An X-Ray segment with each field the map names (SQL on a subsegment, as the SDK
    sends it) through the X-Ray intake."""
    now = time.time()
    segment: dict[str, Any] = {"trace_id": xray.xray_trace_id(TRACE_ID),
                               "id": "70de5b6f19ff9a0a", "name": "catalog",
                               "start_time": now, "end_time": now + 0.1}
    statement: dict[str, Any] = {"id": "70de5b6f19ff9a0b", "name": "kansoku@db",
                                 "namespace": "remote", "start_time": now + 0.01,
                                 "end_time": now + 0.02}
    names = _names(Instrumentation.XRAY)
    for name in names.values():
        target = statement if name.sent_as.startswith("sql.") else segment
        _put(target, name.sent_as, VALUES.get(name.sent_as, "value-1"))
    segment["subsegments"] = [statement]

    spans = _attributes(xray.XRayDecoder().decode(segment))

    assert len(spans) == 2
    for attribute, name in names.items():
        assert any(name.stored_as in span for span in spans), (
            f"{name.sent_as} is not stored as {name.stored_as} ({attribute})")
        assert any(carries(span, attribute, Instrumentation.XRAY) for span in spans)


def test_every_newrelic_attribute_of_the_map_is_stored_where_the_map_says() -> None:
    """A span event with each attribute the map names, each where the agent puts it:
    `component` among the intrinsics of a datastore span, the user id among the custom
    attributes, the rest among the agent's."""
    names = _names(Instrumentation.NEWRELIC)
    intrinsics: dict[str, Any] = {
        "type": "Span", "guid": "18118fb16cd31ffb", "traceId": TRACE_ID,
        "name": "Datastore/statement/Postgres/products/select",
        "timestamp": int(time.time() * 1000), "duration": 0.01, "category": "datastore"}
    user: dict[str, Any] = {}
    agent: dict[str, Any] = {}
    for name in names.values():
        value = VALUES.get(name.sent_as, "value-1")
        if name.sent_as == "component":
            intrinsics[name.sent_as] = value
        elif name.sent_as == semconv.NEWRELIC_USER_ID_ATTRIBUTE:
            user[name.sent_as] = value
        else:
            agent[name.sent_as] = value

    (span,) = _attributes(newrelic.span_rows(["catalog", {}, [[intrinsics, user, agent]]],
                                             "catalog"))

    for attribute, name in names.items():
        assert name.stored_as in span, (
            f"{name.sent_as} is not stored as {name.stored_as} ({attribute})")
        assert carries(span, attribute, Instrumentation.NEWRELIC)


@pytest.mark.parametrize("approach", [Instrumentation.XRAY, Instrumentation.NEWRELIC])
def test_an_attribute_the_approach_lacks_is_never_carried(approach: Instrumentation) -> None:
    assert stored_name(semconv.HTTP_ROUTE, approach) is None
    assert not carries({semconv.HTTP_ROUTE: "/api/v1/products/{id}"}, semconv.HTTP_ROUTE,
                       approach)
    assert carries({semconv.HTTP_ROUTE: "/x"}, semconv.HTTP_ROUTE, Instrumentation.OTEL)
