"""What the service map answers: nodes (services, databases and caches) and the calls
between them."""

from __future__ import annotations

import enum

from pydantic import BaseModel, Field


class EdgeKind(enum.StrEnum):
    """How one node calls another."""

    HTTP = "http"
    MESSAGING = "messaging"
    DATABASE = "database"


class NodeKind(enum.StrEnum):
    SERVICE = "service"
    DATABASE = "database"


class Edge(BaseModel):
    """Calls from `parent` to `child` in the time range."""

    parent: str
    child: str = Field(description="A service, or a database or cache system "
                                   "(db.system.name)")
    kind: EdgeKind
    calls: int
    errors: int
    mean_ms: float


class Node(BaseModel):
    id: str
    kind: NodeKind


class ServiceMap(BaseModel):
    nodes: list[Node]
    edges: list[Edge]


class Dependency(BaseModel):
    """An edge between two services, in Jaeger's shape."""

    parent: str
    child: str
    callCount: int
