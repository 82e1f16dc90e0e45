"""`/api/map` on the shop's calls: every call an edge with its numbers, datastores named
for what they are (Valkey, though its spans say redis), and for each call a trace search
that finds the traces holding it."""

from __future__ import annotations

import json
from typing import Any

import httpx

from kansoku.explorer.map.models import SYSTEMS, EdgeKind, NodeKind
from kansoku.kit import semconv
from tests.explorer.map.conftest import Call


async def _map(base: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base) as http:
        answer = await http.get("/api/map", params={"lookback": "15m"})
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


async def test_datastores_are_named_for_what_they_are_and_keep_their_ids(
        shop_explorer: str) -> None:
    nodes = {node["id"]: node for node in (await _map(shop_explorer))["nodes"]}
    assert len(nodes) == 13
    valkey = nodes["redis"]
    assert (valkey["kind"], valkey["name"]) == (NodeKind.DATABASE, "Valkey")
    assert f"{semconv.DB_SYSTEM}=redis" in valkey["note"]
    assert "Redis protocol" in valkey["note"]
    assert (nodes["postgresql"]["name"], nodes["postgresql"]["note"]) == ("PostgreSQL", None)
    services = [node for node in nodes.values() if node["kind"] == NodeKind.SERVICE]
    assert len(services) == 11
    assert all(node["name"] == node["id"] and node["note"] is None for node in services)
    assert SYSTEMS["nats"].name == "NATS"


async def test_every_call_is_an_edge_with_its_numbers_and_the_search_for_its_traces(
        shop_explorer: str, shop_calls: tuple[Call, ...]) -> None:
    edges = {(edge["parent"], edge["child"]): edge
             for edge in (await _map(shop_explorer))["edges"]}
    assert set(edges) == {(call.caller, call.callee) for call in shop_calls}
    for call in shop_calls:
        edge = edges[call.caller, call.callee]
        assert (edge["calls"], edge["errors"]) == (call.count, call.errors), call
        assert edge["mean_ms"] == 8.0
        kind = (EdgeKind.DATABASE if call.datastore
                else EdgeKind.MESSAGING if call.subject else EdgeKind.HTTP)
        assert edge["kind"] == kind, call
        assert edge["via"] == ("NATS" if call.subject else None), call
        assert edge["traces"]["service"] == call.caller
        tag: str | None
        match kind:
            case EdgeKind.DATABASE:
                tag = f"{semconv.DB_SYSTEM}={call.callee}"
            case EdgeKind.MESSAGING:
                tag = f"{semconv.MESSAGING_DESTINATION}={call.subject}"
            case EdgeKind.HTTP:
                tag = f"{semconv.PEER_SERVICE}={call.callee}" if call.names_callee else None
        assert edge["traces"]["tag"] == tag, call


async def test_an_edges_search_finds_the_traces_of_its_calls(
        shop_explorer: str, shop_calls: tuple[Call, ...]) -> None:
    """Each call is a trace of its own here, so the search for an edge's traces finds
    exactly that many — where the spans name the callee."""
    edges = (await _map(shop_explorer))["edges"]
    async with httpx.AsyncClient(base_url=shop_explorer) as http:
        for call in shop_calls:
            if not call.names_callee:
                continue
            search = next(edge["traces"] for edge in edges
                          if (edge["parent"], edge["child"]) == (call.caller, call.callee))
            key, value = search["tag"].split("=", 1)
            answer = await http.get("/api/traces", params={
                "service": search["service"], "tags": json.dumps({key: value}),
                "lookback": "15m", "limit": 100})
            assert answer.status_code == 200, answer.text
            traces = answer.json()["data"]
            assert len(traces) == call.count, call
