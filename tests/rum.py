"""What a browser journey must leave in the explorer: real-user monitoring, checked through
the explorer's own API (the same one its Browser page and waterfall read).

Call `assert_rum_exported` at the end of a journey, after closing or navigating away from
the last page: the script sends the final Web Vitals of a page (LCP, CLS) when the page
is hidden or left.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx

from kansoku.explorer.app import create_app as create_explorer
from kansoku.explorer.settings import Settings as ExplorerSettings
from tests.support import serve_in_thread

#: The browser's service name, as the gateway's intake forwards it.
RUM_SERVICE = "storefront-web"
#: The Web Vitals every visited page must have reported.
REQUIRED_VITALS = ("LCP", "CLS", "TTFB")


@contextmanager
def explorer_in_thread() -> Iterator[str]:
    """A real explorer (OTLP receiver, store in memory, query API) in this process, on a
    free port; yields its URL, which takes OTLP (`/v1/...`) and queries (`/api/...`)."""
    with serve_in_thread(create_explorer(ExplorerSettings(db_path=":memory:")),
                         lifespan="on") as url:
        yield url


def serves(page: str, path: str) -> bool:
    """Whether a row of the Browser page (`page`: a route template such as
    `/products/{product_id}`, or a path the gateway has no template for) is `path`'s."""
    pattern = "".join("[^/]+" if part.startswith("{") else re.escape(part)
                      for part in re.split(r"(\{[^}]*\})", page))
    return re.fullmatch(pattern, path) is not None


def missing_vitals(vitals: list[dict[str, Any]], paths: Sequence[str]) -> list[str]:
    """`"<path> <vital>"` for each required vital the explorer has no sample of (pages
    are grouped by their route template)."""
    seen = [(row["page"], row["name"]) for row in vitals if row.get("samples")]
    return [f"{path} {name}" for path in paths for name in REQUIRED_VITALS
            if not any(wanted == name and serves(page, path) for page, wanted in seen)]


def browser_to_gateway_traces(traces: list[dict[str, Any]]) -> list[str]:
    """Ids of the traces whose root is a storefront-web span with a gateway span as its
    direct child (Jaeger's JSON, as the explorer's /api/traces answers)."""
    linked = []
    for found in traces:
        services = {key: process["serviceName"]
                    for key, process in found["processes"].items()}
        spans = found["spans"]
        roots = [span for span in spans if not span["references"]
                 and services[span["processID"]] == RUM_SERVICE]
        for root in roots:
            if any(services[span["processID"]] == "gateway"
                   and any(ref["refType"] == "CHILD_OF" and ref["spanID"] == root["spanID"]
                           for ref in span["references"])
                   for span in spans):
                linked.append(found["traceID"])
                break
    return linked


async def assert_rum_exported(explorer_url: str, paths: Sequence[str], *,
                              timeout: float = 30) -> None:
    """Wait until the explorer has LCP, CLS and TTFB for each of `paths` (real paths, as
    the browser showed them) and at least one trace that starts in the browser and
    continues in the gateway; fail naming what is missing."""
    deadline = time.monotonic() + timeout
    missing: list[str] = []
    linked: list[str] = []
    async with httpx.AsyncClient(base_url=explorer_url, timeout=10) as explorer:
        while True:
            vitals = (await explorer.get("/api/vitals", params={"lookback": "2h"})
                      ).raise_for_status().json()["data"]["vitals"]
            missing = missing_vitals(vitals, paths)
            if not linked:
                traces = (await explorer.get("/api/traces", params={
                    "service": RUM_SERVICE, "lookback": "2h", "limit": 200})
                          ).raise_for_status().json()["data"]
                linked = browser_to_gateway_traces(traces)
            if (not missing and linked) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    problems = []
    if missing:
        problems.append("Web Vitals never arrived: " + ", ".join(missing))
    if not linked:
        problems.append(f"no trace has a {RUM_SERVICE} root span with a gateway child")
    assert not problems, "; ".join(problems) + f" (after {timeout:.0f} s)"
