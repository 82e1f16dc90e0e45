"""How one kansoku service calls another: who the call is for (`Caller`), what it can end
in (its data, `Refused`, or `DependencyUnavailable`), and the base of every typed client
in `kansoku.contracts.clients`.

A method of a client answers with the service's data or raises:

- `Refused` — the service said no (4xx). The service's problem is kept whole (its
  request id, the field it names, a validation error's list), so a caller can hand it
  on exactly as the service wrote it, show its sentence next to a form's field, or read
  an extension (`reason` of a declined payment). This is the one place a problem+json
  answer is read;
- `DependencyUnavailable` (from `kit.http`) — the service could not be reached, did not
  answer in time, answered 5xx, or its circuit is open.

Every call is made for a `Caller`, whose token goes along for the service to check
itself: `ANONYMOUS`; a public API request's `Bearer` (its own `Authorization` header);
the gateway's web session; or `ServiceCaller`, a service acting on its own with the
service token identity issued to it (orders reserving stock and charging a card, the
worker storing a thumbnail). When a service no longer accepts the token (401), the
caller decides what that means: the API hands the 401 on, a web session logs out, a
service asks identity for a new token.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol, cast

import httpx
from fastapi import Request

from kansoku.kit import i18n
from kansoku.kit.auth import ServiceCredentials
from kansoku.kit.errors import PROBLEM_MEMBERS, Problem
from kansoku.kit.http import ServiceClient

#: A JSON object as a service answers it.
Json = dict[str, Any]


# --- who a call is for ------------------------------------------------------------------

class Caller(Protocol):
    """Who a call is made for."""

    async def auth_headers(self) -> dict[str, str]:
        """The headers that say so (`Authorization: Bearer …`), or none."""
        ...

    def token_rejected(self) -> None:
        """A service answered 401 to a call that carried this caller's token. May raise
        instead of the `Refused` that follows (a web session sends the browser to log
        in again)."""
        ...


class _Anonymous:
    """Calls that need no user (the catalog is public)."""

    async def auth_headers(self) -> dict[str, str]:
        return {}

    def token_rejected(self) -> None:  # no token was sent
        return None


ANONYMOUS: Final[Caller] = _Anonymous()


@dataclass(frozen=True)
class Bearer:
    """A public API request's caller: its `Authorization` header goes along unchanged,
    and a service's 401 is handed back to it as it is."""

    authorization: str | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def of(cls, request: Request) -> Bearer:
        return cls(request.headers.get("authorization"))

    async def auth_headers(self) -> dict[str, str]:
        return {"Authorization": self.authorization} if self.authorization else {}

    def token_rejected(self) -> None:
        return None


@dataclass(frozen=True)
class ServiceCaller:
    """A service calling on its own behalf, with the token identity issued to it: the
    callee admits it by name (`kit.auth.allow(services=[...])`)."""

    credentials: ServiceCredentials

    async def auth_headers(self) -> dict[str, str]:
        return await self.credentials.headers()

    def token_rejected(self) -> None:
        self.credentials.forget()


# --- what a call can end in -------------------------------------------------------------

class Refused(Problem):
    """A service said no (4xx). `detail` is its sentence for a person, in the language
    the call asked for (the reader's: see `ServiceApi._call`); `field` the
    request field it is about, when it names one; `body` its whole problem, which the
    gateway answers with unchanged wherever no page puts the sentence next to a field.
    Its extensions (a decline's `reason`, the `product_ids` not found) are the
    problem's own, so a service that raises a `Refused` on hands it on as it came."""

    def __init__(self, status: int, code: str, detail: str, *, field: str | None = None,
                 body: Json | None = None, headers: dict[str, str] | None = None) -> None:
        extensions = {key: value for key, value in (body or {}).items()
                      if key not in PROBLEM_MEMBERS}
        super().__init__(status, code, detail, headers=headers, **extensions)
        self.field = field
        self.body: Json = body if body is not None else {}

    @classmethod
    def from_response(cls, response: httpx.Response) -> Refused:
        try:
            body = response.json()
        except ValueError:
            body = None
        problem: Json = body if isinstance(body, dict) else {}
        field = problem.get("field")
        errors = problem.get("errors") or []
        if field is None and errors and isinstance(errors[0], dict):
            field = errors[0].get("field")  # a validation error: name its first field
        headers = {name: response.headers[name] for name in ("retry-after",)
                   if name in response.headers}
        return cls(response.status_code, str(problem.get("type", "error")).rsplit("/", 1)[-1],
                   str(problem.get("detail")
                       or i18n.gettext("The request was refused (HTTP {status}).").format(
                           status=response.status_code)),
                   field=str(field) if field else None, body=problem or None, headers=headers)


@dataclass(frozen=True)
class Download:
    """A non-JSON answer to pass on as it is — an image, a CSV file — or `304` (no
    content) when the caller's copy is current."""

    status_code: int
    content: bytes | None
    headers: dict[str, str]


#: What a passed-on download keeps of the service's response headers.
_DOWNLOAD_HEADERS: Final = ("content-type", "content-disposition", "etag", "cache-control",
                            "content-security-policy", "x-content-type-options",
                            "retry-after")


def _present(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Query parameters without the ones not given."""
    return {key: value for key, value in (params or {}).items() if value is not None}


def _language_header() -> dict[str, str]:
    return {"Accept-Language": str(i18n.current_language())}


class ServiceApi:
    """One service, called the one way: the base of each typed client."""

    def __init__(self, client: ServiceClient) -> None:
        self.client = client

    async def _call(self, method: str, path: str, caller: Caller = ANONYMOUS, *,
                    json: Any = None, params: Mapping[str, Any] | None = None,
                    headers: Mapping[str, str] | None = None,
                    content: bytes | None = None) -> Any:
        """The answer's JSON (None for 204), or `Refused`. The reader's language goes
        along (`Accept-Language`): the service names products, and orders keeps it for
        the e-mails, in that language."""
        sent = {**await caller.auth_headers(), **_language_header(), **(headers or {})}
        answer = await self.client.request(method, path, headers=sent, json=json,
                                           params=_present(params), content=content)
        if answer.status_code >= 400:
            if answer.status_code == 401 and "Authorization" in sent:
                caller.token_rejected()
            raise Refused.from_response(answer)
        return None if answer.status_code == 204 else answer.json()

    async def _object(self, method: str, path: str, caller: Caller = ANONYMOUS,
                      **kwargs: Any) -> Json:
        return cast(Json, await self._call(method, path, caller, **kwargs))

    async def _list(self, method: str, path: str, caller: Caller = ANONYMOUS,
                    **kwargs: Any) -> list[Json]:
        return cast(list[Json], await self._call(method, path, caller, **kwargs))

    async def _download(self, path: str, caller: Caller = ANONYMOUS, *,
                        if_none_match: str | None = None,
                        params: Mapping[str, Any] | None = None) -> Download:
        """A non-JSON answer; a browser's `If-None-Match` goes along, so an unchanged
        picture costs a 304."""
        headers = {**await caller.auth_headers(), **_language_header()}
        if if_none_match:
            headers["If-None-Match"] = if_none_match
        answer = await self.client.request("GET", path, headers=headers,
                                           params=_present(params))
        if answer.status_code >= 400:
            raise Refused.from_response(answer)
        return Download(answer.status_code,
                        answer.content if answer.status_code == 200 else None,
                        {name: answer.headers[name] for name in _DOWNLOAD_HEADERS
                         if name in answer.headers})

    async def aclose(self) -> None:
        await self.client.aclose()
