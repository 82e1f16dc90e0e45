"""The explorer's pages. Each is a small server-rendered shell; the scripts in `static/`
(`explorer.js` shared, one per feature) fill it from the JSON API (the same API scripts
and Grafana use), so what the pages show and what the API answers can never disagree."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from kansoku.explorer.problems.models import PROBLEM_TITLES
from kansoku.kit.semconv import RUM_SERVICE
from kansoku.topology import SERVICES

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

#: (path, label) of the navigation, in order.
SECTIONS = (("/", "Services"), ("/map", "Service map"), ("/traces", "Traces"),
            ("/problems", "Problems"), ("/alerts", "Alerts"), ("/slos", "SLOs"),
            ("/logs", "Logs"), ("/charts", "Metrics"), ("/browser", "Browser"))


#: The pages' scripts, in load order: the shared helpers first, then one per feature
#: (each adds its page's filler to `pages`), a library before the feature using it.
SCRIPTS = ("explorer.js", "charts.js", "services.js", "vendor/elk.bundled.js", "map.js",
           "traces.js", "problems.js", "logs.js", "metrics.js", "rum.js", "alerts.js", "slos.js")


#: Every component the pages colour, in a fixed order, so a service keeps its colour on
#: every page and in every trace (`serviceColor` in explorer.js).
COMPONENTS = (*(service.name for service in SERVICES), RUM_SERVICE)


def _page(request: Request, page: str, title: str, **context: object) -> Response:
    return templates.TemplateResponse(request, "page.html", {
        "page": page, "title": title, "sections": SECTIONS, "scripts": SCRIPTS,
        "components": " ".join(COMPONENTS), **context})


@router.get("/", response_class=HTMLResponse)
async def services_page(request: Request) -> Response:
    return _page(request, "services", "Services")


@router.get("/services/{service}", response_class=HTMLResponse)
async def service_page(service: str, request: Request) -> Response:
    return _page(request, "service", service, service=service)


@router.get("/map", response_class=HTMLResponse)
async def map_page(request: Request) -> Response:
    return _page(request, "map", "Service map")


@router.get("/traces", response_class=HTMLResponse)
async def traces_page(request: Request) -> Response:
    return _page(request, "traces", "Traces")


@router.get("/traces/{trace_id}", response_class=HTMLResponse)
async def trace_page(trace_id: str, request: Request) -> Response:
    return _page(request, "trace", f"Trace {trace_id[:8]}", trace_id=trace_id)


@router.get("/problems", response_class=HTMLResponse)
async def problems_page(request: Request) -> Response:
    return _page(request, "problems", "Problems", kinds=PROBLEM_TITLES)


@router.get("/logs", response_class=HTMLResponse)
async def logs_page(request: Request) -> Response:
    return _page(request, "logs", "Logs")


# Not /metrics: that is every kansoku process's Prometheus endpoint, the explorer's too.
@router.get("/charts", response_class=HTMLResponse)
async def metrics_page(request: Request) -> Response:
    return _page(request, "charts", "Metrics")


@router.get("/browser", response_class=HTMLResponse)
async def browser_page(request: Request) -> Response:
    return _page(request, "browser", "Browser")


@router.get("/alerts", response_class=HTMLResponse)
async def alerts_page(request: Request) -> Response:
    return _page(request, "alerts", "Alerts")


@router.get("/slos", response_class=HTMLResponse)
async def slos_page(request: Request) -> Response:
    return _page(request, "slos", "SLOs")
