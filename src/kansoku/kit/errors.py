"""Errors as RFC 9457 problem details (`application/problem+json`), never a traceback.

Every problem carries the request id, so what a caller sees can be found in the logs and
the trace of that request.

The shop's APIs answer programs, and their problems stay English. An app whose answers
people read on its pages (the explorer) installs the handlers `in_readers_language`:
then the problems they write — a path with nothing at it, a method not allowed, fields
not valid — and the standard titles come in the request's language (kit/i18n.py), as
RFC 9457 allows for `title` ("except for localization"); `type`, `status` and the
field names stay as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from http import HTTPStatus
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException

from kansoku.kit.context import current_request_id
from kansoku.kit.i18n import N_, gettext

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """An error meant for the caller. Raise it anywhere; it becomes problem+json.

    `code` is a short stable identifier (e.g. `dependency-unavailable`) that also forms
    the problem `type`; `detail` is one sentence a person can act on.

    Raising a problem rolls back the request's database work, unless `keep_changes`:
    then what was written is committed first — a saga records that it compensated (an
    order marked cancelled, a declined payment kept) and still answers with the error.
    """

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        keep_changes: bool = False,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.keep_changes = keep_changes
        self.status = status
        self.code = code
        self.detail = detail
        self.title = title or HTTPStatus(status).phrase
        self.headers = headers or {}
        self.extensions = extensions


class DependencyUnavailable(Problem):
    """Another component this request needs did not answer in time, or answered 5xx.

    `response` is the 5xx answer when there was one (a caller that expects error answers
    from that component, like the gateway from the lab, can show it). `request_sent` says
    the request reached the component before the answer was lost (a read timeout, a
    connection that broke): what it asked may have been done.
    """

    def __init__(self, dependency: str, reason: str, response: Any = None, *,
                 request_sent: bool = False) -> None:
        super().__init__(
            503,
            "dependency-unavailable",
            f"The {dependency} service is unavailable right now ({reason}). "
            "Please try again in a few seconds.",
            title="Service Unavailable",
            headers={"Retry-After": "5"},
            dependency=dependency,
        )
        self.dependency = dependency
        self.reason = reason
        self.response = response
        self.request_sent = request_sent


#: The members of a problem+json body that are not extensions.
PROBLEM_MEMBERS = frozenset({"type", "title", "status", "detail", "instance", "request_id"})


class UpstreamDependencyUnavailable(DependencyUnavailable):
    """The called service is up, but answered 503 because something *it* needs is
    unavailable: its problem names that `dependency` (e.g. orders answering
    `payments-unavailable` with `dependency: payments`).

    The callee's problem is handed on as it was (code, title, detail and extensions), so
    whoever called the caller learns the real cause, not "orders is unavailable". `via`
    is the service that answered.
    """

    def __init__(self, via: str, response: Any, body: dict[str, Any]) -> None:
        super().__init__(str(body["dependency"]), f"reported by {via}", response=response)
        self.via = via
        self.code = str(body.get("type", "dependency-unavailable")).rsplit("/", 1)[-1]
        self.title = str(body.get("title", self.title))
        self.detail = str(body.get("detail", self.detail))
        self.args = (self.detail,)
        self.extensions = {key: value for key, value in body.items()
                           if key not in PROBLEM_MEMBERS}
        retry_after = response.headers.get("retry-after") if response is not None else None
        if retry_after:
            self.headers = {"Retry-After": retry_after}


def problem_body(
    status: int, code: str, title: str, detail: str, instance: str | None, **extensions: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"https://kansoku.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body["request_id"] = current_request_id()
    body.update(extensions)
    return body


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body = problem_body(
        status, code, title or HTTPStatus(status).phrase, detail, instance, **extensions
    )
    # The request middleware adds the X-Request-ID header to every response.
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE,
                        headers=headers)


#: Says a text to the caller: as written (English), or in the request's language.
Say = Callable[[str], str]


def _as_written(text: str) -> str:
    return text


#: The standard titles (HTTP's reason phrases) of the statuses kansoku answers with,
#: marked for the catalogs: translated for an app that speaks its reader's language
#: (both of Python's phrases where they changed: 3.13 follows RFC 9110).
STANDARD_TITLES = frozenset({
    N_("Bad Request"), N_("Unauthorized"), N_("Forbidden"), N_("Not Found"),
    N_("Method Not Allowed"), N_("Conflict"), N_("Request Entity Too Large"),
    N_("Content Too Large"), N_("Unsupported Media Type"), N_("Unprocessable Entity"),
    N_("Unprocessable Content"), N_("Too Many Requests"), N_("Internal Server Error"),
    N_("Bad Gateway"), N_("Service Unavailable"), N_("Gateway Timeout")})


def _title(say: Say, title: str | None, status: int) -> str:
    title = title or HTTPStatus(status).phrase
    return say(title) if title in STANDARD_TITLES else title


def _code_for_status(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "-").replace("'", "")
    except ValueError:
        return "error"


async def _handle_problem(say: Say, request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    if exc.status >= 500:
        logger.warning("answered %s %s: %s", exc.status, exc.code, exc.detail)
    # The detail is the raiser's: written in the reader's language where it was raised.
    return problem_response(exc.status, exc.code, exc.detail,
                            title=_title(say, exc.title, exc.status),
                            instance=request.url.path, headers=exc.headers, **exc.extensions)


def allowed_methods(request: Request) -> list[str]:
    """Every method the app serves at the request's path, for a 405's `Allow`.

    Starlette's own 405 names only the methods of the first route whose path matched,
    though GET and POST of one path are often two routes. Where a fixed path and a
    template both take the path (`/flags/reset` and `/flags/{name}`), the fixed one is
    the resource, as OpenAPI matches paths: the routes with the fewest path parameters
    count.
    """
    path = request.scope["path"]
    by_parameters: dict[int, set[str]] = {}
    # Every route with the path it is served at (routers included in routers too).
    for route in iter_route_contexts(request.app.routes):
        regex = getattr(route, "path_regex", None)
        methods = route.methods
        if regex is None or not methods or not regex.match(path):
            continue
        parameters = len(getattr(route, "param_convertors", {}))
        by_parameters.setdefault(parameters, set()).update(methods)
    return sorted(by_parameters[min(by_parameters)]) if by_parameters else []


def _size(limit: int) -> str:
    return f"{limit // 1024:,} KiB" if limit >= 1024 else f"{limit} bytes"


class BodyTooLarge(StarletteHTTPException):
    """The request body is larger than `limit` bytes: raised as it is read (or at once,
    for a declared Content-Length over the limit), answered 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {_size(limit)}: send less.")
        self.limit = limit


async def _handle_http_exception(say: Say, request: Request, exc: Exception
                                 ) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).description
    headers = dict(exc.headers or {})
    code = _code_for_status(status)
    path = request.url.path
    if status == 404 and exc.detail == "Not Found":
        detail = say(N_("There is nothing at {path}.")).format(path=path)
    elif status == 405:
        methods = allowed_methods(request)
        detail = (say(N_("{method} is not allowed on {path}. It takes {methods}.")) if methods
                  else say(N_("{method} is not allowed on {path}."))).format(
            method=request.method, path=path, methods=", ".join(methods))
        if methods:
            headers["Allow"] = ", ".join(methods)
    elif isinstance(exc, BodyTooLarge):
        code = "body-too-large"
        detail = say(N_("The request body is larger than {size}: send less.")).format(
            size=_size(exc.limit))
    elif status == 400 and exc.detail == "There was an error parsing the body":
        # FastAPI's words for a body it could not read at all (not UTF-8, or a form it
        # could not parse).
        cause = exc.__cause__
        if isinstance(cause, UnicodeDecodeError):
            detail = say(N_("The body is not valid JSON: it is not UTF-8 text (byte "
                            "{byte}).")).format(byte=cause.start)
            code = "invalid-json"
        else:
            detail = say(N_("The body could not be read: send JSON (or the form the "
                            "endpoint documents)."))
            code = "unreadable-body"
    return problem_response(status, code, detail, title=_title(say, None, status),
                            instance=path, headers=headers)


def _invalid_json(exc: RequestValidationError) -> dict[str, Any] | None:
    """FastAPI's error for a JSON body that does not parse, if that is what `exc` is."""
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            return dict(error)
    return None


def invalid_parameter(field: str, message: str, location: str = "query") -> Problem:
    """A parameter a route checks by hand (a duration, say), refused as FastAPI's own
    validation refuses one: 422 `validation-error` naming the field, with the same
    `errors` list — so the answer is the one the OpenAPI document promises."""
    return Problem(422, "validation-error", message, title="Unprocessable Content",
                   field=field,
                   errors=[{"field": field, "location": location, "message": message}])


async def _handle_validation_error(say: Say, request: Request, exc: Exception
                                   ) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    invalid = _invalid_json(exc)
    if invalid is not None:
        # FastAPI reports it as field ("body", <position>); it is the whole body.
        position = invalid["loc"][-1]
        # The JSON parser's own words (English): what went wrong where.
        reason = str(invalid.get("ctx", {}).get("error", "")).rstrip(".")
        return problem_response(
            400, "invalid-json",
            (say(N_("The body is not valid JSON at position {position}: {reason}."))
             if reason else say(N_("The body is not valid JSON at position {position}.")))
            .format(position=position, reason=f"{reason[:1].lower()}{reason[1:]}"),
            title=_title(say, None, 400), instance=request.url.path, position=position)
    errors = [
        {
            # ("query", "limit") reads better as "limit", and says which field is wrong.
            "field": ".".join(str(part) for part in error["loc"][1:]) or str(error["loc"][0]),
            "location": str(error["loc"][0]),
            "message": error["msg"],
        }
        for error in exc.errors()
    ]
    names = ", ".join(sorted({error["field"] for error in errors}))
    return problem_response(422, "validation-error",
                            say(N_("Some fields are not valid: {names}.")).format(names=names),
                            title=_title(say, "Unprocessable Content", 422),
                            instance=request.url.path, errors=errors)


async def _handle_pool_exhausted(say: Say, request: Request, exc: Exception) -> JSONResponse:
    # Every database connection stayed busy for the pool's whole timeout: the service is
    # overloaded, not broken. Say so, and when to come back.
    logger.warning("no database connection became free in time for %s", request.url.path)
    return problem_response(503, "busy", say(N_(
        "The service is too busy to take this request right now. Please try again in a "
        "few seconds.")), title=_title(say, None, 503),
        instance=request.url.path, headers={"Retry-After": "2"})


def install_problem_handlers(app: FastAPI, *, in_readers_language: bool = False) -> None:
    """Answer every error raised inside a route as problem+json: the handlers' own
    words and the standard titles in English, or `in_readers_language` (the request's,
    kit/i18n.py) for an app whose pages show them."""
    say: Say = gettext if in_readers_language else _as_written
    app.add_exception_handler(Problem, partial(_handle_problem, say))
    app.add_exception_handler(sqlalchemy.exc.TimeoutError, partial(_handle_pool_exhausted, say))
    app.add_exception_handler(StarletteHTTPException, partial(_handle_http_exception, say))
    app.add_exception_handler(RequestValidationError, partial(_handle_validation_error, say))
