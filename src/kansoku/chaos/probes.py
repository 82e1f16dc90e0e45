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

What a probe saw is `Words` (kit/i18n.py): the report says it in the reader's language,
its JSON in English. A service's own answer (a problem's code, an exception's text) is
quoted as it came.

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
from kansoku.kit.i18n import N_, Phrase, PhrasedError, Words, in_english
from kansoku.loadgen import shop
from kansoku.topology import EXPLORER_TOKEN_VARIABLE, explorer_headers


@dataclass(frozen=True)
class ProbeResult:
    """One probe's answer: whether it held, what it saw, how long it took."""

    probe: Words
    held: bool
    detail: Words
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {"probe": in_english(self.probe), "held": self.held,
                "detail": in_english(self.detail), "seconds": round(self.seconds, 3)}


class ProbeFailed(PhrasedError):
    """The probe saw something other than the steady state; the message says what."""


def _problem(answer: httpx.Response) -> Words:
    """The short reason a service gave: a problem's code (the end of its `type`), else
    its detail or title."""
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:120].strip() or Phrase(N_("no body"))
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
        detail: Words
        try:
            detail = await self._dispatch(probe)
            held = True
        except (ProbeFailed, StackError) as exc:
            detail, held = exc.words, False
        except httpx.TimeoutException as exc:
            detail = Phrase(N_("no answer in time ({error})"), error=type(exc).__name__)
            held = False
        except (httpx.HTTPError, OSError) as exc:
            detail = type(exc).__name__ + (f": {exc}" if str(exc) else "")
            detail, held = detail[:200], False
        except (ValueError, KeyError, TypeError) as exc:
            # An answer of the wrong shape is a failed probe, not the end of the run.
            detail = Phrase(N_("unexpected answer ({error})"),
                            error=f"{type(exc).__name__}: {exc}"[:160])
            held = False
        return ProbeResult(probe.label, held, detail, time.perf_counter() - started)

    async def _dispatch(self, probe: Any) -> Words:
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

    async def ready(self, probe: model.ReadyProbe) -> Words:
        url = self.stack.url(probe.component)
        parts = urlsplit(url)
        if parts.scheme == "http":
            answer = await self.client.get(f"{url}/health/ready", timeout=probe.timeout)
            if answer.status_code != 200:
                down = [name for name, check in _checks(answer).items()
                        if check.get("status") != "up"]
                if down:
                    raise ProbeFailed(Phrase(N_("not ready ({status}; down: {down})"),
                                             status=answer.status_code, down=", ".join(down)))
                raise ProbeFailed(Phrase(N_("not ready ({status})"), status=answer.status_code))
            return Phrase(N_("ready"))
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(parts.hostname, parts.port), probe.timeout)
        except TimeoutError as exc:
            raise ProbeFailed(Phrase(N_("no connection within {limit}"),
                                     limit=format_duration(probe.timeout))) from exc
        except OSError as exc:
            raise ProbeFailed(Phrase(N_("refuses connections ({error})"),
                                     error=exc.strerror or str(exc))) from exc
        writer.close()
        return Phrase(N_("accepts connections"))

    async def http(self, probe: model.HttpProbe) -> Words:
        url = self.stack.url(probe.component) + probe.path
        started = time.perf_counter()
        answer = await self.client.request(probe.method, url, timeout=probe.timeout)
        took = time.perf_counter() - started
        if answer.status_code not in probe.status:
            raise ProbeFailed(Phrase(N_("answered {status} ({problem})"),
                                     status=answer.status_code, problem=_problem(answer)))
        if probe.max_seconds is not None and took > probe.max_seconds:
            raise ProbeFailed(Phrase(N_("answered {status} after {seconds}s, over {limit}"),
                                     status=answer.status_code, seconds=f"{took:.2f}",
                                     limit=format_duration(probe.max_seconds)))
        return Phrase(N_("{status} in {milliseconds}ms"), status=answer.status_code,
                      milliseconds=f"{took * 1000:.0f}")

    # --- a customer buys ------------------------------------------------------------------

    async def checkout(self, probe: model.CheckoutProbe) -> Words:
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
            raise ProbeFailed(Phrase(N_("placing the order answered {status} ({problem})"),
                                     status=order.status_code, problem=_problem(order)))
        paid = await self.client.post(f"{api}/payments", timeout=probe.timeout, headers=headers,
                                      json={"order_id": order.json()["id"],
                                            "payment_method": "credit_card",
                                            "payment_details": shop.PAYING_CARD})
        took = time.perf_counter() - started
        if paid.status_code != 201:
            raise ProbeFailed(Phrase(N_("paying answered {status} ({problem}) after "
                                        "{seconds}s"), status=paid.status_code,
                                     problem=_problem(paid), seconds=f"{took:.2f}"))
        if probe.max_seconds is not None and took > probe.max_seconds:
            raise ProbeFailed(Phrase(N_("paid, but after {seconds}s, over {limit}"),
                                     seconds=f"{took:.2f}",
                                     limit=format_duration(probe.max_seconds)))
        return Phrase(N_("order {number} paid in {milliseconds}ms"),
                      number=paid.json().get("order_number", "?"),
                      milliseconds=f"{took * 1000:.0f}")

    async def _customer(self, api: str, timeout: float) -> dict[str, str]:
        """The probe customer's Authorization header: registered the first time, logged
        in when there is no token yet."""
        if self._token is None:
            if self._account is None:
                account = shop.new_account("chaos")
                created = await self.client.post(f"{api}/users", json=account,
                                                 timeout=timeout)
                if created.status_code != 201:
                    raise ProbeFailed(Phrase(N_("registering the probe customer answered "
                                                "{status} ({problem})"),
                                             status=created.status_code,
                                             problem=_problem(created)))
                self._account = account
            login = await self.client.post(f"{api}/auth/login", timeout=timeout, json={
                "email": self._account["email"], "password": self._account["password"]})
            if login.status_code != 200:
                raise ProbeFailed(Phrase(N_("logging in answered {status} ({problem})"),
                                         status=login.status_code, problem=_problem(login)))
            self._token = login.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    async def _product(self, api: str, timeout: float) -> int:
        """A product with plenty in stock, read through the API as a customer would
        (its stock comes from inventory): the same one each round while it lasts."""
        if self._product_id is not None:
            detail = await self.client.get(f"{api}/products/{self._product_id}",
                                           timeout=timeout)
            if detail.status_code != 200:
                raise ProbeFailed(Phrase(N_("reading product {product} answered {status} "
                                            "({problem})"), product=self._product_id,
                                         status=detail.status_code, problem=_problem(detail)))
            status = detail.json().get("stock_status")
            if status == "in_stock":
                return self._product_id
            if status not in ("low", "out"):
                raise ProbeFailed(Phrase(N_("product {product} shows stock '{status}' "
                                            "(inventory away?)"), product=self._product_id,
                                         status=status))
        listing = await self.client.get(f"{api}/products", timeout=timeout,
                                        params={"limit": 40, "sort": "id"})
        if listing.status_code != 200:
            raise ProbeFailed(Phrase(N_("listing products answered {status} ({problem})"),
                                     status=listing.status_code, problem=_problem(listing)))
        for item in listing.json()["items"]:
            detail = await self.client.get(f"{api}/products/{item['id']}", timeout=timeout)
            if detail.status_code == 200 and detail.json().get("stock_status") == "in_stock":
                self._product_id = int(item["id"])
                return self._product_id
        raise ProbeFailed(Phrase(N_("no product among the first 40 shows plenty in stock")))

    # --- the explorer's RED figures -------------------------------------------------------

    async def red(self, probe: model.ErrorRateProbe | model.LatencyProbe) -> Words:
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
            raise ProbeFailed(Phrase(N_("the explorer answered {status} ({problem})"),
                                     status=answer.status_code, problem=_problem(answer)))
        rows = answer.json()["data"]
        if probe.route:
            rows = [row for row in rows if row.get("route") == probe.route]
        row = rows[0] if rows else None
        requests = int(row["requests"]) if row else 0
        span = f"{window:.0f}s"
        if requests < max(probe.min_requests, 1):
            if probe.min_requests:
                raise ProbeFailed(Phrase(N_("{requests} requests in the last {span}, fewer "
                                            "than {least}"), requests=requests, span=span,
                                         least=probe.min_requests))
            return Phrase(N_("no requests in the last {span}"), span=span)
        assert row is not None
        if isinstance(probe, model.ErrorRateProbe):
            percent = float(row["error_percent"])
            seen = Phrase(N_("{percent}% errors ({errors} of {requests} requests in the last "
                             "{span})"), percent=f"{percent:.1f}", errors=row["errors"],
                          requests=requests, span=span)
            if percent > probe.max_percent:
                raise ProbeFailed(Phrase(N_("{seen}, over {limit}%"), seen=seen,
                                         limit=f"{probe.max_percent:g}"))
            return seen
        p95 = float(row["p95_ms"]) / 1000
        seen = Phrase(N_("p95 {milliseconds}ms ({requests} requests in the last {span})"),
                      milliseconds=f"{p95 * 1000:.0f}", requests=requests, span=span)
        if p95 > probe.max_p95:
            raise ProbeFailed(Phrase(N_("{seen}, over {limit}"), seen=seen,
                                     limit=format_duration(probe.max_p95)))
        return seen


def _checks(answer: httpx.Response) -> dict[str, dict[str, Any]]:
    try:
        checks = answer.json().get("checks", {})
    except (ValueError, AttributeError):
        return {}
    return checks if isinstance(checks, dict) else {}
