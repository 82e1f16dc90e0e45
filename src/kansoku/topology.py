"""The shape of the platform: every component's name and default port.

This is the one place that names the components. Services read their own port from it
(through their settings), the supervisor reads all of them to start and probe the stack.
It imports nothing, so any module may depend on it without pulling in a service.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceInfo:
    """A kansoku process that serves HTTP: its name, default port and what it is for."""

    name: str
    default_port: int
    purpose: str
    #: Import path of the ASGI app factory that `kansoku serve NAME` runs.
    app_factory: str


#: Every service. The supervisor starts the explorer first, so the others have somewhere
#: to send telemetry from their first span on, then the shop's services at once, and the
#: synthetic monitors last: they walk through the gateway, so they start once it is ready.
SERVICES: tuple[ServiceInfo, ...] = (
    ServiceInfo("explorer", 8800, "telemetry explorer: UI and API",
                "kansoku.explorer.app:create_app"),
    ServiceInfo("identity", 8001, "users, login, tokens",
                "kansoku.services.identity.app:create_app"),
    ServiceInfo("catalog", 8002, "products and categories",
                "kansoku.services.catalog.app:create_app"),
    ServiceInfo("inventory", 8003, "stock levels and reservations",
                "kansoku.services.inventory.app:create_app"),
    ServiceInfo("cart", 8004, "shopping carts (Valkey)",
                "kansoku.services.cart.app:create_app"),
    ServiceInfo("orders", 8005, "checkout and orders",
                "kansoku.services.orders.app:create_app"),
    ServiceInfo("payments", 8006, "simulated card processor",
                "kansoku.services.payments.app:create_app"),
    ServiceInfo("worker", 8007, "event functions (health only)",
                "kansoku.services.worker.app:create_app"),
    ServiceInfo("lab", 8008, "performance-problem lab",
                "kansoku.services.lab.app:create_app"),
    ServiceInfo("gateway", 8000, "storefront, admin, public API",
                "kansoku.services.gateway.app:create_app"),
    ServiceInfo("synthetics", 8009, "synthetic monitors (scheduled journeys)",
                "kansoku.loadgen.synthetics:create_app"),
)

#: Services that act as customers of the shop rather than parts of it: started after
#: every other service is ready (and stopped first).
MONITORS: frozenset[str] = frozenset({"synthetics"})

SERVICES_BY_NAME: dict[str, ServiceInfo] = {service.name: service for service in SERVICES}

#: The explorer's second listener: OTLP over HTTP, the standard port.
DEFAULT_OTLP_PORT = 4318

#: The worker's embedded mailbox (SMTP), private to the stack.
DEFAULT_SMTP_PORT = 8025

#: The explorer's vendor intakes, on the vendors' own ports: the X-Ray daemon's (UDP),
#: the CloudWatch agent's for embedded-metric-format lines (TCP and UDP), and an HTTPS
#: New Relic collector (docs/approaches.md). `kansoku up` points the services at them.
DEFAULT_XRAY_PORT = 2000
DEFAULT_EMF_PORT = 25888
DEFAULT_NEWRELIC_PORT = 8443

#: Embedded infrastructure ports: the standard ones (5432, 4222, 6379) with a leading 1,
#: so that they never collide with system servers on the standard ports.
DEFAULT_POSTGRES_PORT = 15432
DEFAULT_NATS_PORT = 14222
DEFAULT_VALKEY_PORT = 16379

#: Name of the one database; every service owns a schema in it.
DATABASE_NAME = "kansoku"


def default_url(service: str) -> str:
    """Where a service is on this machine when nothing says otherwise."""
    return f"http://127.0.0.1:{SERVICES_BY_NAME[service].default_port}"


def port_variable(component: str) -> str:
    """The environment variable that overrides a component's port, e.g. KANSOKU_CATALOG_PORT."""
    return f"KANSOKU_{component.upper()}_PORT"


def url_variable(component: str) -> str:
    """The environment variable that tells clients where a service is, e.g. KANSOKU_CATALOG_URL."""
    return f"KANSOKU_{component.upper()}_URL"


#: The bearer credential programs show the explorer when it requires a login
#: (KANSOKU_EXPLORER_AUTH; docs/security.md).
EXPLORER_TOKEN_VARIABLE = "KANSOKU_EXPLORER_TOKEN"  # noqa: S105 - its name, not its value


def explorer_headers(token: str | None) -> dict[str, str]:
    """The headers a program sends the explorer: its token, when there is one."""
    return {"Authorization": f"Bearer {token}"} if token else {}
