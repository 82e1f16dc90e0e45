"""The gateway's routes: the storefront pages and the public REST API (`/api/v1`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates

from kansoku.kit.auth import CurrentUser
from kansoku.kit.errors import DependencyUnavailable
from kansoku.services.gateway import service
from kansoku.services.gateway.schemas import (
    Category,
    Credentials,
    Product,
    ProductPage,
    ProfileChange,
    RefreshRequest,
    Registration,
    Tokens,
    User,
)

pages = APIRouter(include_in_schema=False)
public = APIRouter(prefix="/api/v1")
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

#: Problems every route can answer, for the OpenAPI document.
PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}


def wants_html(request: Request) -> bool:
    """Browsers ask for text/html first; scripts and API clients do not."""
    return "text/html" in request.headers.get("accept", "")


@pages.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    """The storefront's home page: products from the catalog."""
    try:
        page = await service.featured_products(request.app.state.catalog)
    except DependencyUnavailable as exc:
        if not wants_html(request):
            raise
        return templates.TemplateResponse(
            request, "unavailable.html",
            {"dependency": exc.dependency, "reason": exc.reason,
             "explorer_url": request.app.state.settings.explorer_url},
            status_code=503, headers={"Retry-After": "5"},
        )
    return templates.TemplateResponse(
        request, "home.html",
        {"products": page["items"], "total": page["total"],
         "explorer_url": request.app.state.settings.explorer_url},
    )


# --- accounts -------------------------------------------------------------------------

@public.post("/users", status_code=201, response_model=User, tags=["accounts"],
             responses={409: PROBLEM, 422: PROBLEM})
async def register(registration: Registration, request: Request) -> JSONResponse:
    """Create a customer account."""
    return await service.relay(request.app.state.identity, "POST", "/users", request,
                               body=registration)


@public.post("/auth/login", response_model=Tokens, tags=["accounts"],
             responses={401: PROBLEM})
async def login(credentials: Credentials, request: Request) -> JSONResponse:
    """Exchange e-mail and password for an access token (send it as
    `Authorization: Bearer …`) and a refresh token."""
    return await service.relay(request.app.state.identity, "POST", "/auth/login", request,
                               body=credentials)


@public.post("/auth/refresh", response_model=Tokens, tags=["accounts"],
             responses={401: PROBLEM})
async def refresh(body: RefreshRequest, request: Request) -> JSONResponse:
    """Exchange a refresh token (each works once) for new tokens."""
    return await service.relay(request.app.state.identity, "POST", "/auth/refresh", request,
                               body=body)


@public.get("/users/me", response_model=User, tags=["accounts"], responses={401: PROBLEM})
async def me(user: CurrentUser, request: Request) -> JSONResponse:
    """Your profile."""
    return await service.relay(request.app.state.identity, "GET", "/users/me", request)


@public.patch("/users/me", response_model=User, tags=["accounts"],
              responses={401: PROBLEM, 422: PROBLEM})
async def change_me(change: ProfileChange, user: CurrentUser, request: Request
                    ) -> JSONResponse:
    """Change your name or password (a new password logs out your other sessions)."""
    return await service.relay(request.app.state.identity, "PATCH", "/users/me", request,
                               body=change)


# --- catalog --------------------------------------------------------------------------

@public.get("/products", response_model=ProductPage, tags=["catalog"])
async def products(
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
    category: Annotated[str | None, Query(max_length=64, description="Category slug")] = None,
    q: Annotated[str | None, Query(max_length=100, description="Search words")] = None,
    sort: Annotated[Literal["id", "name", "price", "-price", "newest"], Query()] = "id",
) -> JSONResponse:
    """A page of products: filter by category, search, sort; `total` counts them all."""
    return await service.relay(
        request.app.state.catalog, "GET", "/products", request,
        params={"limit": limit, "offset": offset, "category": category, "q": q, "sort": sort})


@public.get("/products/{product_id}", response_model=Product, tags=["catalog"],
            responses={404: PROBLEM})
async def product(product_id: int, request: Request) -> JSONResponse:
    """One product."""
    return await service.relay(request.app.state.catalog, "GET", f"/products/{product_id}",
                               request)


@public.get("/categories", response_model=list[Category], tags=["catalog"])
async def categories(request: Request) -> JSONResponse:
    """Every category."""
    return await service.relay(request.app.state.catalog, "GET", "/categories", request)
