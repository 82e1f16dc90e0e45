"""The edge of the worker's world for its tests: one small FastAPI app that plays
identity (service tokens, JWKS), catalog (images, thumbnails, products) and inventory
(the stock overview), with the real routes' shapes and limits, and records what the
worker asked of it.

Tests reach it in-process (`httpx.ASGITransport`, passed to `ServiceClient`) or over
real HTTP (`tests.support.serve_in_thread`), and change its state to script what happens.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, Query, Request, Response
from PIL import Image
from pydantic import BaseModel

from kansoku.kit.auth import Principal, allow
from kansoku.kit.errors import Problem, install_problem_handlers
from kansoku.kit.http import CircuitBreakers, RetryPolicy, ServiceClient
from tests.tokens import TokenIssuer

#: Who the stand-ins admit, as the real catalog and inventory do.
WorkerOrAdmin = Annotated[Principal, allow(services=["worker"], admin=True)]

#: What identity and the worker agree on in these tests.
SERVICE_SECRET = "worker-test-secret"


def png(width: int, height: int, colour: str = "teal") -> bytes:
    """A real PNG image."""
    output = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(output, format="PNG")
    return output.getvalue()


@dataclass
class StoredThumbnail:
    product_id: int
    version: int
    content_type: str
    data: bytes
    caller: Principal


class _TokenAsk(BaseModel):
    service: str
    secret: str


@dataclass
class World:
    """Identity, catalog and inventory as the worker sees them."""

    tokens: TokenIssuer
    secret: str = SERVICE_SECRET
    #: (product id, version) -> the uploaded image's bytes.
    images: dict[tuple[int, int], bytes] = field(default_factory=dict)
    #: product id -> its current image version (a product not here is gone).
    current_image: dict[int, int] = field(default_factory=dict)
    #: Catalog's products (`ProductOut` shapes) and inventory's levels (`StockLevel`).
    products: dict[int, dict[str, Any]] = field(default_factory=dict)
    stock: list[dict[str, Any]] = field(default_factory=list)
    #: Services that answer 503 to everything, as if overloaded or down.
    down: set[str] = field(default_factory=set)
    #: What the worker did.
    thumbnails: list[StoredThumbnail] = field(default_factory=list)
    issued_tokens: list[str] = field(default_factory=list)
    inventory_reads: list[tuple[int, int, Principal]] = field(default_factory=list)
    product_reads: list[str] = field(default_factory=list)
    app: FastAPI = field(init=False)

    def __post_init__(self) -> None:
        self.app = self._build()

    def add_image(self, product_id: int, version: int, data: bytes) -> None:
        self.images[product_id, version] = data
        self.current_image[product_id] = version

    def _available(self, service: str) -> None:
        if service in self.down:
            raise Problem(503, "down", f"{service} is down in this test.")

    def _build(self) -> FastAPI:
        app = FastAPI()
        app.state.tokens = self.tokens.verifier
        install_problem_handlers(app)

        @app.post("/auth/service-token")
        async def service_token(ask: _TokenAsk) -> dict[str, Any]:
            self._available("identity")
            if ask.secret != self.secret:
                raise Problem(401, "bad-service-secret", "The service secret is wrong.")
            token = self.tokens.token("service", user_id=f"service:{ask.service}")
            self.issued_tokens.append(token)
            return {"access_token": token, "token_type": "bearer", "expires_in": 900}

        @app.get("/.well-known/jwks.json")
        async def jwks() -> dict[str, Any]:
            keys: dict[str, Any] = self.tokens.signer.jwks()
            return keys

        @app.get("/products/{product_id}/image")
        async def image(product_id: int, version: int) -> Response:
            self._available("catalog")
            data = self.images.get((product_id, version))
            if data is None:
                raise Problem(404, "image-not-found", "No such image.")
            return Response(data, media_type="image/png")

        @app.put("/products/{product_id}/thumbnail", status_code=204)
        async def store_thumbnail(product_id: int, version: int, request: Request,
                                  caller: WorkerOrAdmin) -> None:
            self._available("catalog")
            if not caller.is_service:
                raise Problem(403, "forbidden", "Only the worker stores thumbnails.")
            if product_id not in self.current_image:
                raise Problem(404, "product-not-found", "No such product.")
            if version != self.current_image[product_id]:
                raise Problem(409, "image-replaced", "A newer image was uploaded.")
            self.thumbnails.append(StoredThumbnail(
                product_id, version, request.headers.get("content-type", ""),
                await request.body(), caller))

        @app.get("/products")
        async def products(ids: Annotated[str, Query(max_length=800)],
                           limit: Annotated[int, Query(ge=1, le=100)] = 20
                           ) -> dict[str, Any]:
            self._available("catalog")
            self.product_reads.append(ids)
            wanted = [int(part) for part in ids.split(",")]
            found = [self.products[i] for i in wanted if i in self.products][:limit]
            return {"items": found, "total": len(found), "limit": limit, "offset": 0}

        @app.get("/inventory")
        async def inventory(caller: WorkerOrAdmin,
                            limit: Annotated[int, Query(ge=1, le=200)] = 50,
                            offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
            self._available("inventory")
            self.inventory_reads.append((limit, offset, caller))
            ordered = sorted(self.stock, key=lambda level: int(level["product_id"]))
            return {"items": ordered[offset:offset + limit], "total": len(ordered),
                    "limit": limit, "offset": offset}

        return app

    def client(self, service: str, breakers: CircuitBreakers) -> ServiceClient:
        """A client for `service` that reaches this world in-process."""
        return ServiceClient(service, f"http://{service}", breakers,
                             retry=RetryPolicy(initial_backoff=0.01, max_backoff=0.02),
                             transport=httpx.ASGITransport(app=self.app))


def stock_level(product_id: int, on_hand: int, threshold: int = 5) -> dict[str, Any]:
    """A `StockLevel` as inventory answers it."""
    status = "out" if on_hand <= 0 else "low" if on_hand <= threshold else "in_stock"
    return {"product_id": product_id, "on_hand": on_hand, "reserved": 0,
            "available": on_hand, "low_stock_threshold": threshold, "status": status,
            "low_stock": on_hand <= threshold}


def product(product_id: int, name: str | None = None) -> dict[str, Any]:
    """A `ProductOut` as catalog answers it."""
    return {"id": product_id, "sku": f"SKU-{product_id}", "name": name or f"Thing {product_id}",
            "description": "", "price": "9.99", "currency": "USD",
            "category": {"id": 1, "slug": "telescopes", "name": "Telescopes"}}
