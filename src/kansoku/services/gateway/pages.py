"""The storefront's web pages, server-rendered from `templates/`."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from kansoku.kit.errors import DependencyUnavailable
from kansoku.services.gateway import service

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def wants_html(request: Request) -> bool:
    """Browsers ask for text/html first; scripts and API clients do not."""
    return "text/html" in request.headers.get("accept", "")


@router.get("/", response_class=HTMLResponse)
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
