"""Real-user monitoring's SQL: the browsers' Web Vitals per page and their JavaScript
errors, which arrive as log records."""

from __future__ import annotations

from kansoku.explorer.common.sql import as_models
from kansoku.explorer.rum.models import BrowserError, PageVital, Rating
from kansoku.explorer.store import TelemetryStore
from kansoku.kit import semconv

#: What the storefront's script reports arrives as log records with these event names
#: (attribute `event.name`), from service `storefront-web`:
#: a Web Vital: `web_vital.name` (LCP, INP, CLS, FCP, TTFB), `web_vital.value` (ms; CLS
#: unitless), `url.path`; a JavaScript error: `exception.type`, `exception.message`,
#: `url.path`.
WEB_VITAL_EVENT = semconv.EVENT_WEB_VITAL

#: A page as the Browser page groups it: its route template, so `/products/1` and
#: `/products/42` are one row; the path itself for a page the gateway has no template for.
PAGE = (f"coalesce(json_extract_string(attributes, '$.\"{semconv.URL_TEMPLATE}\"'), "
        f"json_extract_string(attributes, '$.\"{semconv.URL_PATH}\"'))")
BROWSER_ERROR_EVENT = semconv.EVENT_ERROR

#: web-vitals' thresholds: (good up to, poor above), as the intake rates them.
VITAL_THRESHOLDS = semconv.VITAL_THRESHOLDS


def rating(name: str, value: float) -> Rating:
    """How web-vitals rates `value` of the vital `name`."""
    good, poor = VITAL_THRESHOLDS.get(name, (float("inf"), float("inf")))
    return Rating.GOOD if value <= good else Rating.POOR if value > poor \
        else Rating.NEEDS_IMPROVEMENT


def web_vitals(store: TelemetryStore, start_ns: int, end_ns: int) -> list[PageVital]:
    """Each page's (route template's) Web Vitals at the 75th percentile (how web-vitals
    judges a page), with how many measurements and the rating."""
    rows = store.rows(
        f"SELECT {PAGE} AS page, "
        "json_extract_string(attributes, '$.\"web_vital.name\"') AS name, "
        "quantile_cont(CAST(json_extract(attributes, '$.\"web_vital.value\"') AS DOUBLE), "
        "0.75) AS p75, count(*) AS samples FROM logs "
        "WHERE time_ns BETWEEN ? AND ? "
        "AND json_extract_string(attributes, '$.\"event.name\"') = ? "
        "GROUP BY 1, 2 ORDER BY 1, 2", [start_ns, end_ns, WEB_VITAL_EVENT])
    for row in rows:
        row["rating"] = rating(row["name"] or "", float(row["p75"] or 0))
    return as_models(PageVital, rows)


def browser_errors(store: TelemetryStore, start_ns: int, end_ns: int) -> list[BrowserError]:
    """JavaScript errors by message and page (route template), most frequent first."""
    return as_models(BrowserError, store.rows(
        "SELECT json_extract_string(attributes, '$.\"exception.message\"') AS message, "
        f"{PAGE} AS page, count(*) AS count, "
        "max(time_ns) AS last_seen_ns, arg_max(trace_id, time_ns) AS trace_id FROM logs "
        "WHERE time_ns BETWEEN ? AND ? "
        "AND json_extract_string(attributes, '$.\"event.name\"') = ? "
        "GROUP BY 1, 2 ORDER BY count DESC LIMIT 50", [start_ns, end_ns, BROWSER_ERROR_EVENT]))
