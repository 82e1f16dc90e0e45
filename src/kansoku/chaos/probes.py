"""Probing the hypothesis: each probe asks the running stack one question and says
whether the answer is what the steady state needs, with a few words on what it saw.

- `ready`: a service's `/health/ready` answers 200; PostgreSQL, NATS or Valkey accepts a
  TCP connection.
- `http`: a request to a service answers an expected status (within `max_seconds`).
- `checkout`: a customer buys one unit through the public API — the product (with its
  stock), the order, the payment with the test card that pays. The account is
  registered once per run; its password lives in memory only.
- `error-rate`, `latency`: the explorer's RED figures (`/api/red`) of a service (or one of
  its routes) over the probe's window.

Probe traffic carries the baggage `kansoku.synthetic=synthetic`, like the synthetic
monitors', so the explorer tells it from real customers.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from kansoku import __version__
from kansoku.chaos import experiment as model
from kansoku.chaos.actions import Stack, StackError
from kansoku.kit.durations import format_duration
from kansoku.loadgen import shop
from kansoku.topology import EXPLORER_TOKEN_VARIABLE, explorer_headers


@dataclass(frozen=True)
class ProbeResult:
    """One probe's answer: whether it held, what it saw, how long it took."""

    probe: str
    held: bool
    detail: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"probe": self.probe, "held": self.held, "detail": self.detail,
                "seconds": round(self.seconds, 3)}


class ProbeFailed(Exception):
    """The probe saw something other than the steady state; the message says what."""


def _problem(answer: httpx.Response) -> str:
    """The short reason a service gave: a problem's code (the end of its `type`), else
    its detail or title."""
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:120].strip() or "no body"
    if not isinstance(body, dict):
        return str(body)[:120]
    kind = str(body.get("type") or "")
    if "/problems/" in kind:
        code = kind.rsplit("/", 1)[-1]
        # Which service was unavailable, when the problem says so.
        return f"{code}: {body['dependency']}" if body.get("dependency") else code
    return str(body.get("detail") or body.get("title") or body.get("status") or body)[:120]


class Prober:
    """Runs the probes of one experiment against one stack, keeping what they learn
    (the checkout's account and product) from one round to the next."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.client = httpx.AsyncClient(headers={
            "User-Agent": f"kansoku-chaos/{__version__}",
            "baggage": shop.baggage_header(shop.SYNTHETIC)})
        #: The checkout customer's credentials and token, and the product it buys.
        self._account: dict[str, str] | None = None
        self._token: str | None = None
        self._product_id: int | None = None
        #: While recovering: the explorer's windows start no earlier than this (wall clock).
        self.not_before: float | None = None

    async def close(self) -> None:
        await self.client.aclose()

    async def round(self, probes: list[Any]) -> list[ProbeResult]:
        """Every probe once, all at the same time."""
        return list(await asyncio.gather(*(self.probe(probe) for probe in probes)))

    async def probe(self, probe: Any) -> ProbeResult:
        started = time.perf_counter()
        try:
            detail = await self._dispatch(probe)
            held = True
        except ProbeFailed as exc:
            detail, held = str(exc), False
        except StackError as exc:
            detail, held = str(exc), False
        except httpx.TimeoutException as exc:
            detail, held = f"no answer in time ({type(exc).__name__})", False
        except (httpx.HTTPError, OSError) as exc:
            detail = type(exc).__name__ + (f": {exc}" if str(exc) else "")
            detail, held = detail[:200], False
        except (ValueError, KeyError, TypeError) as exc:
            # An answer of the wrong shape is a failed probe, not the end of the run.
            detail, held = f"unexpected answer ({type(exc).__name__}: {exc})"[:200], False
        return ProbeResult(probe.label, held, detail, time.perf_counter() - started)

    async def _dispatch(self, probe: Any) -> str:
        if isinstance(probe, model.ReadyProbe):
            return await self.ready(probe)
        if isinstance(probe, model.HttpProbe):
            return await self.http(probe)
        if isinstance(probe, model.CheckoutProbe):
            return await self.checkout(probe)
        if isinstance(probe, model.ErrorRateProbe | model.LatencyProbe):
            return await self.red(probe)
        raise ProbeFailed(f"no way to run {probe!r}")  # pragma: no cover

    # --- health ---------------------------------------------------------------------------

    async def ready(self, probe: model.ReadyProbe) -> str:
        url = self.stack.url(probe.component)
        parts = urlsplit(url)
        if parts.scheme == "http":
            answer = await self.client.get(f"{url}/health/ready", timeout=probe.timeout)
            if answer.status_code != 200:
                down = [name for name, check in _checks(answer).items()
                        if check.get("status") != "up"]
                raise ProbeFailed(f"not ready ({answer.status_code}"
                                  + (f"; down: {', '.join(down)})" if down else ")"))
            return "ready"
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(parts.hostname, parts.port), probe.timeout)
        except TimeoutError as exc:
            raise ProbeFailed(f"no connection within {format_duration(probe.timeout)}"
                              ) from exc
        except OSError as exc:
            raise ProbeFailed(f"refuses connections ({exc.strerror or exc})") from exc
        writer.close()
        return "accepts connections"

    async def http(self, probe: model.HttpProbe) -> str:
        url = self.stack.url(probe.component) + probe.path
        started = time.perf_counter()
        answer = await self.client.request(probe.method, url, timeout=probe.timeout)
        took = time.perf_counter() - started
        if answer.status_code not in probe.status:
            raise ProbeFailed(f"answered {answer.status_code} ({_problem(answer)})")
        if probe.max_seconds is not None and took > probe.max_seconds:
            raise ProbeFailed(f"answered {answer.status_code} after {took:.2f}s, over "
                              f"{format_duration(probe.max_seconds)}")
        return f"{answer.status_code} in {took * 1000:.0f}ms"

    # --- a customer buys ------------------------------------------------------------------

    async def checkout(self, probe: model.CheckoutProbe) -> str:
        api = self.stack.url("gateway") + shop.API
        started = time.perf_counter()
        headers = await self._customer(api, probe.timeout)
        product_id = await self._product(api, probe.timeout)
        order = await self.client.post(
            f"{api}/orders", timeout=probe.timeout,
            headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
            json={"items": [{"product_id": product_id, "quantity": 1}],
                  "shipping_address": shop.SHIPPING_ADDRESS})
        if order.status_code == 409:
            self._product_id = None  # sold out meanwhile: another product next time
        if order.status_code == 401:
            self._token = None  # expired: log in again next time
        if order.status_code != 201:
            raise ProbeFailed(f"placing the order answered {order.status_code} "
                              f"({_problem(order)})")
        paid = await self.client.post(f"{api}/payments", timeout=probe.timeout, headers=headers,
                                      json={"order_id": order.json()["id"],
                                            "payment_method": "credit_card",
                                            "payment_details": shop.PAYING_CARD})
        took = time.perf_counter() - started
        if paid.status_code != 201:
            raise ProbeFailed(f"paying answered {paid.status_code} ({_problem(paid)}) "
                              f"after {took:.2f}s")
        if probe.max_seconds is not None and took > probe.max_seconds:
            raise ProbeFailed(f"paid, but after {took:.2f}s, over "
                              f"{format_duration(probe.max_seconds)}")
        return f"order {paid.json().get('order_number', '?')} paid in {took * 1000:.0f}ms"

    async def _customer(self, api: str, timeout: float) -> dict[str, str]:
        """The probe customer's Authorization header: registered the first time, logged
        in when there is no token yet."""
        if self._token is None:
            if self._account is None:
                account = shop.new_account("chaos")
                created = await self.client.post(f"{api}/users", json=account,
                                                 timeout=timeout)
                if created.status_code != 201:
                    raise ProbeFailed(f"registering the probe customer answered "
                                      f"{created.status_code} ({_problem(created)})")
                self._account = account
            login = await self.client.post(f"{api}/auth/login", timeout=timeout, json={
                "email": self._account["email"], "password": self._account["password"]})
            if login.status_code != 200:
                raise ProbeFailed(f"logging in answered {login.status_code} "
                                  f"({_problem(login)})")
            self._token = login.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    async def _product(self, api: str, timeout: float) -> int:
        """A product with plenty in stock, read through the API as a customer would
        (its stock comes from inventory): the same one each round while it lasts."""
        if self._product_id is not None:
            detail = await self.client.get(f"{api}/products/{self._product_id}",
                                           timeout=timeout)
            if detail.status_code != 200:
                raise ProbeFailed(f"reading product {self._product_id} answered "
                                  f"{detail.status_code} ({_problem(detail)})")
            status = detail.json().get("stock_status")
            if status == "in_stock":
                return self._product_id
            if status not in ("low", "out"):
                raise ProbeFailed(f"product {self._product_id} shows stock '{status}' "
                                  "(inventory away?)")
        listing = await self.client.get(f"{api}/products", timeout=timeout,
                                        params={"limit": 40, "sort": "id"})
        if listing.status_code != 200:
            raise ProbeFailed(f"listing products answered {listing.status_code} "
                              f"({_problem(listing)})")
        for item in listing.json()["items"]:
            detail = await self.client.get(f"{api}/products/{item['id']}", timeout=timeout)
            if detail.status_code == 200 and detail.json().get("stock_status") == "in_stock":
                self._product_id = int(item["id"])
                return self._product_id
        raise ProbeFailed("no product among the first 40 shows plenty in stock")

    # --- the explorer's RED figures -------------------------------------------------------

    async def red(self, probe: model.ErrorRateProbe | model.LatencyProbe) -> str:
        window = probe.window
        if self.not_before is not None:
            # Recovering: only what happened since the rollback counts.
            window = max(1.0, min(window, time.time() - self.not_before))
        params: dict[str, Any] = {"service": probe.service, "lookback": f"{window:.0f}s"}
        if probe.route:
            params["by_route"] = "true"
        explorer = self.stack.url("explorer")
        answer = await self.client.get(f"{explorer}/api/red", params=params, timeout=10.0,
                                       headers=explorer_headers(
                                           os.environ.get(EXPLORER_TOKEN_VARIABLE)))
        if answer.status_code != 200:
            raise ProbeFailed(f"the explorer answered {answer.status_code} "
                              f"({_problem(answer)})")
        rows = answer.json()["data"]
        if probe.route:
            rows = [row for row in rows if row.get("route") == probe.route]
        row = rows[0] if rows else None
        requests = int(row["requests"]) if row else 0
        span = f"{window:.0f}s"
        if requests < max(probe.min_requests, 1):
            if probe.min_requests:
                raise ProbeFailed(f"{requests} requests in the last {span}, fewer than "
                                  f"{probe.min_requests}")
            return f"no requests in the last {span}"
        assert row is not None
        if isinstance(probe, model.ErrorRateProbe):
            percent = float(row["error_percent"])
            text = (f"{percent:.1f}% errors ({row['errors']} of {requests} requests in "
                    f"the last {span})")
            if percent > probe.max_percent:
                raise ProbeFailed(f"{text}, over {probe.max_percent:g}%")
            return text
        p95 = float(row["p95_ms"]) / 1000
        text = f"p95 {p95 * 1000:.0f}ms ({requests} requests in the last {span})"
        if p95 > probe.max_p95:
            raise ProbeFailed(f"{text}, over {format_duration(probe.max_p95)}")
        return text


def _checks(answer: httpx.Response) -> dict[str, dict[str, Any]]:
    try:
        checks = answer.json().get("checks", {})
    except (ValueError, AttributeError):
        return {}
    return checks if isinstance(checks, dict) else {}
