"""The explorer's pages. Each is a small server-rendered shell; the scripts in `static/`
(`explorer.js` shared, one per feature) fill it from the JSON API (the same API scripts
and Grafana use), so what the pages show and what the API answers can never disagree."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from kansoku.explorer.problems.models import PROBLEM_TITLES
from kansoku.kit.semconv import RUM_SERVICE
from kansoku.topology import SERVICES

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

#: (path, page, title) of each section, in the navigation's order. The page names the
#: script's filler (`pages.<page>` in static/). Metrics are at /charts, not /metrics:
#: that is every kansoku process's Prometheus endpoint, the explorer's too.
SECTIONS = (("/", "services", "Services"), ("/map", "map", "Service map"),
            ("/traces", "traces", "Traces"), ("/problems", "problems", "Problems"),
            ("/alerts", "alerts", "Alerts"), ("/slos", "slos", "SLOs"),
            ("/logs", "logs", "Logs"), ("/charts", "charts", "Metrics"),
            ("/browser", "browser", "Browser"))


#: The pages' scripts, in load order: the shared helpers first, then one per feature
#: (each adds its page's filler to `pages`).
SCRIPTS = ("explorer.js", "charts.js", "services.js", "map.js", "traces.js", "problems.js",
           "logs.js", "metrics.js", "rum.js", "alerts.js", "slos.js")

#: Libraries only some pages use, loaded on those alone: ELK (1.6 MB) lays out the map.
#: Deferred like the rest, they are there before any page's filler runs.
PAGE_LIBRARIES = {"map": ("vendor/elk.bundled.js",)}


#: Every component the pages colour, in a fixed order, so a service keeps its colour on
#: every page and in every trace (`serviceColor` in explorer.js).
COMPONENTS = (*(service.name for service in SERVICES), RUM_SERVICE)


def _page(request: Request, page: str, title: str, **context: object) -> Response:
    return templates.TemplateResponse(request, "page.html", {
        "page": page, "title": title, "sections": SECTIONS,
        "scripts": (*SCRIPTS, *PAGE_LIBRARIES.get(page, ())),
        "components": " ".join(COMPONENTS), "kinds": PROBLEM_TITLES, **context})


def _section(page: str, title: str) -> Callable[[Request], Awaitable[Response]]:
    async def section_page(request: Request) -> Response:
        return _page(request, page, title)
    return section_page


for _path, _name, _label in SECTIONS:
    router.add_api_route(_path, _section(_name, _label), methods=["GET"],
                         response_class=HTMLResponse, name=f"{_name}_page")


@router.get("/services/{service}", response_class=HTMLResponse)
async def service_page(service: str, request: Request) -> Response:
    return _page(request, "service", service, service=service)


@router.get("/traces/{trace_id}", response_class=HTMLResponse)
async def trace_page(trace_id: str, request: Request) -> Response:
    return _page(request, "trace", f"Trace {trace_id[:8]}", trace_id=trace_id)
