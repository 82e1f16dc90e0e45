"""The service map: `/api/map` (nodes and edges with rate, errors and latency) and
Jaeger's `/api/dependencies`."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Request

from kansoku.explorer.common import time as timerange
from kansoku.explorer.common.responses import Data, JaegerAnswer, jaeger, read
from kansoku.explorer.map import queries
from kansoku.explorer.map.models import (
    Dependency,
    EdgeKind,
    Node,
    NodeKind,
    ServiceMap,
    system,
)
from kansoku.kit import semconv

router = APIRouter()


@router.get("/api/dependencies", tags=["jaeger"])
async def dependencies(
    request: Request,
    endTs: Annotated[int | None, Query(description="milliseconds")] = None,
    lookback: Annotated[int | None, Query(description="milliseconds")] = None,
) -> JaegerAnswer[list[Dependency]]:
    """Calls between services: parent, child, callCount."""
    end_ns = endTs * 1_000_000 if endTs else time.time_ns()
    start_ns = end_ns - (lookback or 3_600_000) * 1_000_000
    edges = await read(request, queries.dependencies, start_ns, end_ns)
    return jaeger(
        [Dependency(parent=edge.parent, child=edge.child, callCount=edge.calls)
         for edge in edges if edge.kind != EdgeKind.DATABASE])


@router.get("/api/map", tags=["kansoku"])
async def service_map(request: Request, lookback: timerange.Lookback = "1h") -> Data[ServiceMap]:
    """The service map: services, databases and caches as nodes (a datastore named for
    what it is: Valkey, though its spans say redis); calls as edges with rate, errors,
    mean latency and the trace search that finds them."""
    start_ns, end_ns = timerange.window(lookback)
    edges = await read(request, queries.dependencies, start_ns, end_ns)
    databases = {edge.child for edge in edges if edge.kind == EdgeKind.DATABASE}
    ids = sorted({edge.parent for edge in edges} | {edge.child for edge in edges})
    return Data[ServiceMap](data=ServiceMap(nodes=[_node(id_, id_ in databases) for id_ in ids],
                                            edges=edges))


def _node(id_: str, datastore: bool) -> Node:
    if not datastore:
        return Node(id=id_, kind=NodeKind.SERVICE, name=id_)
    what = system(id_)
    return Node(id=id_, kind=NodeKind.DATABASE, name=what.name,
                note=str(what.note).format(attribute=semconv.DB_SYSTEM)
                if what.note is not None else None)
