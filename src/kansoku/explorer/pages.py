"""The explorer's pages. Each is a small server-rendered shell; the scripts in `static/`
(`explorer.js` shared, one per feature) fill it from the JSON API (the same API scripts
and Grafana use), so what the pages show and what the API answers can never disagree.

The pages speak the reader's language (kit/i18n.py): the shell through the template's
`{% trans %}` and `_()`, the scripts through the texts they mark with `_()` and
`ngettext()` — Babel finds those in `static/*.js` once, and every page carries their
translations into the reader's language as a JSON object (`script_messages`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path

from babel.messages.extract import extract_from_dir
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from kansoku.explorer.problems.models import PROBLEM_TITLES
from kansoku.kit import i18n
from kansoku.kit.i18n import lazy_gettext
from kansoku.kit.semconv import RUM_SERVICE
from kansoku.topology import SERVICES

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
i18n.install(templates.env)
STATIC = Path(__file__).parent / "static"

#: (path, page, title) of each section, in the navigation's order. The page names the
#: script's filler (`pages.<page>` in static/). Metrics are at /charts, not /metrics:
#: that is every kansoku process's Prometheus endpoint, the explorer's too.
SECTIONS = (
    ("/", "services", lazy_gettext("Services")), ("/map", "map", lazy_gettext("Service map")),
    ("/traces", "traces", lazy_gettext("Traces")),
    ("/problems", "problems", lazy_gettext("Problems")),
    ("/alerts", "alerts", lazy_gettext("Alerts")), ("/slos", "slos", lazy_gettext("SLOs")),
    ("/logs", "logs", lazy_gettext("Logs")), ("/charts", "charts", lazy_gettext("Metrics")),
    ("/browser", "browser", lazy_gettext("Browser")),
    ("/drills", "drills", lazy_gettext("Drills")),
    ("/approaches", "approaches", lazy_gettext("Approaches")))


#: The pages' scripts, in load order: the shared helpers first, then one per feature
#: (each adds its page's filler to `pages`).
SCRIPTS = ("explorer.js", "charts.js", "services.js", "map.js", "traces.js", "problems.js",
           "logs.js", "metrics.js", "rum.js", "alerts.js", "slos.js", "drills.js",
           "approaches.js")

#: The keywords the scripts mark their texts with, as scripts/messages extracts them.
SCRIPT_KEYWORDS = {"_": None, "ngettext": (1, 2)}


@cache
def script_texts() -> tuple[str | tuple[str, str], ...]:
    """Every text the scripts mark (`_("…")`, `ngettext("…", "…", n)`), found by Babel's
    extraction over `static/` as scripts/messages finds them: a text, or a plural's
    (singular, plural)."""
    found: dict[str | tuple[str, str], None] = {}
    for _filename, _line, message, _comments, _context in extract_from_dir(
            str(STATIC), [("*.js", "javascript")], keywords=SCRIPT_KEYWORDS):
        found[message if isinstance(message, str) else (message[0], message[1])] = None
    return tuple(found)


def script_messages() -> dict[str, str | list[str]]:
    """The scripts' texts in the current language, for the page to carry: by the English
    text, its translation, or a plural's forms (one in Japanese, two in English). Empty
    in English: the scripts' own texts are English."""
    if i18n.current_language() == i18n.DEFAULT_LANGUAGE:
        return {}
    messages: dict[str, str | list[str]] = {}
    for text in script_texts():
        if isinstance(text, str):
            messages[text] = i18n.gettext(text)
        else:
            singular, plural = text
            one, many = (i18n.ngettext(singular, plural, count) for count in (1, 2))
            # Japanese has one form: the same for every count.
            messages[singular] = [one] if one == many else [one, many]
    return messages

#: Libraries only some pages use, loaded on those alone: ELK (1.6 MB) lays out the map.
#: Deferred like the rest, they are there before any page's filler runs.
PAGE_LIBRARIES = {"map": ("vendor/elk.bundled.js",)}


#: Every component the pages colour, in a fixed order, so a service keeps its colour on
#: every page and in every trace (`serviceColor` in explorer.js).
COMPONENTS = (*(service.name for service in SERVICES), RUM_SERVICE)


def _page(request: Request, page: str, title: object, **context: object) -> Response:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return templates.TemplateResponse(request, "page.html", {
        "page": page, "title": str(title), "sections": SECTIONS,
        "scripts": (*SCRIPTS, *PAGE_LIBRARIES.get(page, ())),
        "components": " ".join(COMPONENTS),
        "kinds": {kind: str(title) for kind, title in PROBLEM_TITLES.items()},
        "messages": script_messages(),
        "switch": {language: i18n.switch_url(language, here) for language in i18n.Language},
        **context})


def _section(page: str, title: object) -> Callable[[Request], Awaitable[Response]]:
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
    return _page(request, "trace", i18n.gettext("Trace {id}").format(id=trace_id[:8]),
                 trace_id=trace_id)
