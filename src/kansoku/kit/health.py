"""Health endpoints: `/health/live`, `/health/ready` and `/health`.

- live: the process is up and its event loop answers. Never checks dependencies, so an
  orchestrator does not restart a healthy process because the database blinked.
- ready: every dependency this component needs answered within its timeout. 503 if not.
- health: both, with each check's outcome and timing, for people and `kansoku status`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.utils import suppress_instrumentation

#: A readiness check: finishes if the dependency is usable, raises if it is not.
Check = Callable[[], Awaitable[None]]


async def run_check(check: Check, timeout: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        # Probes come every few seconds: their database round-trips are not traffic
        # anyone wants to see as traces.
        with suppress_instrumentation():
            async with asyncio.timeout(timeout):
                await check()
        outcome: dict[str, Any] = {"status": "up"}
    except TimeoutError:
        outcome = {"status": "down", "error": f"no answer within {timeout:g}s"}
    except Exception as exc:
        outcome = {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
    outcome["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return outcome


async def run_checks(checks: Mapping[str, Check], timeout: float) -> dict[str, dict[str, Any]]:
    """Run every check at once, each bounded by `timeout`."""
    names = list(checks)
    results = await asyncio.gather(*(run_check(checks[name], timeout) for name in names))
    return dict(zip(names, results, strict=True))


def health_router(
    service: str, version: str, checks: Mapping[str, Check], timeout: float
) -> APIRouter:
    router = APIRouter(tags=["health"])
    started = time.monotonic()

    @router.get("/health/live")
    async def live() -> dict[str, str]:
        """The process is alive."""
        return {"status": "up", "service": service}

    @router.get("/health/ready")
    async def ready() -> JSONResponse:
        """Every dependency answered within its timeout (503 if not)."""
        results = await run_checks(checks, timeout)
        is_ready = all(result["status"] == "up" for result in results.values())
        return JSONResponse(
            {"status": "up" if is_ready else "down", "service": service, "checks": results},
            status_code=200 if is_ready else 503,
        )

    @router.get("/health")
    async def summary() -> JSONResponse:
        """Liveness, readiness and each check, in one answer."""
        results = await run_checks(checks, timeout)
        is_ready = all(result["status"] == "up" for result in results.values())
        return JSONResponse(
            {
                "status": "up" if is_ready else "down",
                "service": service,
                "version": version,
                "live": True,
                "ready": is_ready,
                "uptime_seconds": round(time.monotonic() - started, 1),
                "checks": results,
            },
            status_code=200 if is_ready else 503,
        )

    return router
