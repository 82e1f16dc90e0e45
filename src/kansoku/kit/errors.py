"""Errors as RFC 9457 problem details (`application/problem+json`), never a traceback.

Every problem carries the request id, so what a caller sees can be found in the logs and
the trace of that request.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException

from kansoku.kit.context import current_request_id

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


def _code_for_status(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "-").replace("'", "")
    except ValueError:
        return "error"


async def _handle_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    if exc.status >= 500:
        logger.warning("answered %s %s: %s", exc.status, exc.code, exc.detail)
    return problem_response(exc.status, exc.code, exc.detail, title=exc.title,
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


async def _handle_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).description
    headers = dict(exc.headers or {})
    code = _code_for_status(status)
    if status == 404 and exc.detail == "Not Found":
        detail = f"There is nothing at {request.url.path}."
    elif status == 405:
        detail = f"{request.method} is not allowed on {request.url.path}."
        methods = allowed_methods(request)
        if methods:
            headers["Allow"] = ", ".join(methods)
            detail += f" It takes {', '.join(methods)}."
    elif isinstance(exc, BodyTooLarge):
        code = "body-too-large"
    elif status == 400 and exc.detail == "There was an error parsing the body":
        # FastAPI's words for a body it could not read at all (not UTF-8, or a form it
        # could not parse).
        cause = exc.__cause__
        if isinstance(cause, UnicodeDecodeError):
            detail = (f"The body is not valid JSON: it is not UTF-8 text (byte "
                      f"{cause.start}).")
            code = "invalid-json"
        else:
            detail = "The body could not be read: send JSON (or the form the endpoint " \
                     "documents)."
            code = "unreadable-body"
    return problem_response(status, code, detail, instance=request.url.path,
                            headers=headers)


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


async def _handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    invalid = _invalid_json(exc)
    if invalid is not None:
        # FastAPI reports it as field ("body", <position>); it is the whole body.
        position = invalid["loc"][-1]
        reason = str(invalid.get("ctx", {}).get("error", "")).rstrip(".")
        return problem_response(
            400, "invalid-json",
            f"The body is not valid JSON at position {position}"
            + (f": {reason[0].lower()}{reason[1:]}." if reason else "."),
            instance=request.url.path, position=position)
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
    return problem_response(422, "validation-error", f"Some fields are not valid: {names}.",
                            title="Unprocessable Content", instance=request.url.path,
                            errors=errors)


async def _handle_pool_exhausted(request: Request, exc: Exception) -> JSONResponse:
    # Every database connection stayed busy for the pool's whole timeout: the service is
    # overloaded, not broken. Say so, and when to come back.
    logger.warning("no database connection became free in time for %s", request.url.path)
    return problem_response(503, "busy", "The service is too busy to take this request "
                            "right now. Please try again in a few seconds.",
                            instance=request.url.path, headers={"Retry-After": "2"})


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error raised inside a route as problem+json."""
    app.add_exception_handler(Problem, _handle_problem)
    app.add_exception_handler(sqlalchemy.exc.TimeoutError, _handle_pool_exhausted)
    app.add_exception_handler(StarletteHTTPException, _handle_http_exception)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
