"""Errors as RFC 9457 problem details (`application/problem+json`), never a traceback.

Every problem carries the request id, so what a caller sees can be found in the logs and
the trace of that request.

A problem's `detail` is for a person — the shop puts a service's refusal next to the
form field it is about — so every detail is written in the request's language
(kit/i18n.py; the gateway passes its reader's on as Accept-Language), the handlers' own
(a path with nothing at it, a method not allowed, fields not valid) included. What
programs match on stays as it is: `type`, `status`, field names, each invalid field's
`type` and `loc`. The standard `title` stays English too, except in an app installed
`in_readers_language` (the explorer, whose pages show it), as RFC 9457 allows for
`title` ("except for localization").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
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
from kansoku.kit.i18n import N_, _, gettext, ngettext

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(Exception):
    """An error meant for the caller. Raise it anywhere; it becomes problem+json.

    `code` is a short stable identifier (e.g. `dependency-unavailable`) that also forms
    the problem `type`; `detail` is one sentence a person can act on, in the reader's
    language: write it `_("… {name} …").format(name=…)`, translated then formatted
    (the request's language is the reader's: the gateway passes it on as
    `Accept-Language`). Programs match on `code` and the extensions, never on `detail`.
    A detail only a program ever reads (a service asking another) may stay English:
    tests/kit/test_problem_texts.py lists those.

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
        # `reason` is for whoever looks into it (a timeout, a status): kept as it is.
        super().__init__(
            503,
            "dependency-unavailable",
            _("The {dependency} service is unavailable right now ({reason}). Please try "
              "again in a few seconds.").format(dependency=dependency, reason=reason),
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


#: Says a standard title to the caller: as written (English), or in the request's
#: language.
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


def _for_operators(problem: Problem) -> str:
    """What a log line says of `problem`: its code, and for a dependency away which one
    and why — in English, whatever the language of the reader's `detail`."""
    if isinstance(problem, DependencyUnavailable):
        return f"{problem.code} ({problem.dependency}: {problem.reason})"
    dependency = problem.extensions.get("dependency")
    return f"{problem.code} ({dependency})" if dependency else problem.code


async def _handle_problem(say: Say, request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    if exc.status >= 500:
        logger.warning("answered %s %s", exc.status, _for_operators(exc))
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


def _body_too_large(limit: int) -> str:
    if limit >= 1024:
        return _("The request body is larger than {kib} KiB: send less.").format(
            kib=f"{limit // 1024:,}")
    return ngettext("The request body is larger than {bytes} byte: send less.",
                    "The request body is larger than {bytes} bytes: send less.",
                    limit).format(bytes=limit)


class BodyTooLarge(StarletteHTTPException):
    """The request body is larger than `limit` bytes: raised as it is read (or at once,
    for a declared Content-Length over the limit), answered 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _body_too_large(limit))
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
        detail = _("There is nothing at {path}.").format(path=path)
    elif status == 405:
        methods = allowed_methods(request)
        detail = (_("{method} is not allowed on {path}. It takes {methods}.") if methods
                  else _("{method} is not allowed on {path}.")).format(
            method=request.method, path=path, methods=", ".join(methods))
        if methods:
            headers["Allow"] = ", ".join(methods)
    elif isinstance(exc, BodyTooLarge):
        code = "body-too-large"  # its detail was written as it was raised
    elif status == 400 and exc.detail == "There was an error parsing the body":
        # FastAPI's words for a body it could not read at all (not UTF-8, or a form it
        # could not parse).
        cause = exc.__cause__
        if isinstance(cause, UnicodeDecodeError):
            detail = _("The body is not valid JSON: it is not UTF-8 text (byte {byte})."
                       ).format(byte=cause.start)
            code = "invalid-json"
        else:
            detail = _("The body could not be read: send JSON (or the form the endpoint "
                       "documents).")
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
    `errors` list — so the answer is the one the OpenAPI document promises. `message`
    is in the reader's language (`_()`)."""
    return Problem(422, "validation-error", message, title="Unprocessable Content",
                   field=field,
                   errors=[{"field": field, "location": location, "message": message}])


def field_message(error: Mapping[str, Any]) -> str:
    """pydantic's message for one invalid field (an item of `ValidationError.errors()`),
    in the reader's language. The English is pydantic's own (without the parser's
    words some kinds add); a kind of error not listed here keeps pydantic's English.
    The error's `type` and `loc` are what programs read, and stay as they are."""
    context: Mapping[str, Any] = error.get("ctx") or {}
    match error.get("type"):
        case "missing":
            text = _("Field required")
        case "extra_forbidden":
            text = _("Extra inputs are not permitted")
        case "string_too_short":
            text = ngettext("String should have at least {min_length} character",
                            "String should have at least {min_length} characters",
                            int(context.get("min_length", 0)))
        case "string_too_long":
            text = ngettext("String should have at most {max_length} character",
                            "String should have at most {max_length} characters",
                            int(context.get("max_length", 0)))
        case "too_short":
            text = ngettext("{field_type} should have at least {min_length} item after "
                            "validation, not {actual_length}",
                            "{field_type} should have at least {min_length} items after "
                            "validation, not {actual_length}",
                            int(context.get("min_length", 0)))
        case "too_long":
            text = ngettext("{field_type} should have at most {max_length} item after "
                            "validation, not {actual_length}",
                            "{field_type} should have at most {max_length} items after "
                            "validation, not {actual_length}",
                            int(context.get("max_length", 0)))
        case "greater_than":
            text = _("Input should be greater than {gt}")
        case "greater_than_equal":
            text = _("Input should be greater than or equal to {ge}")
        case "less_than":
            text = _("Input should be less than {lt}")
        case "less_than_equal":
            text = _("Input should be less than or equal to {le}")
        case "string_pattern_mismatch":
            text = _("String should match pattern '{pattern}'")
        case "string_type":
            text = _("Input should be a valid string")
        case "int_type":
            text = _("Input should be a valid integer")
        case "int_parsing":
            text = _("Input should be a valid integer, unable to parse string as an integer")
        case "int_from_float":
            text = _("Input should be a valid integer, got a number with a fractional part")
        case "float_type" | "float_parsing":
            text = _("Input should be a valid number")
        case "decimal_type" | "decimal_parsing":
            text = _("Input should be a valid decimal")
        case "bool_type" | "bool_parsing":
            text = _("Input should be a valid boolean")
        case "dict_type" | "model_type" | "model_attributes_type":
            text = _("Input should be a valid dictionary")
        case "list_type":
            text = _("Input should be a valid list")
        case "uuid_type" | "uuid_parsing":
            text = _("Input should be a valid UUID")
        case "datetime_type" | "datetime_parsing" | "datetime_from_date_parsing":
            text = _("Input should be a valid datetime")
        case "enum" | "literal_error":
            text = _("Input should be {expected}")
        case "union_tag_invalid":
            text = _("Input tag '{tag}' found using {discriminator} does not match any of "
                     "the expected tags: {expected_tags}")
        case "value_error" if "reason" in context:
            # pydantic's EmailStr: the reason is email-validator's, in English.
            text = _("value is not a valid email address: {reason}")
        case "value_error":
            # Our own validators' words (kit/fields.py), translated where they raise.
            text = _("Value error, {error}")
        case _:
            return str(error.get("msg", ""))
    try:
        return text.format(**context)
    except (KeyError, IndexError, ValueError):  # a context unlike the one pydantic sends
        return str(error.get("msg", ""))


async def _handle_validation_error(say: Say, request: Request, exc: Exception
                                   ) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    invalid = _invalid_json(exc)
    if invalid is not None:
        # FastAPI reports it as field ("body", <position>); it is the whole body.
        position = invalid["loc"][-1]
        # The JSON parser's own words (English): what went wrong where.
        reason = str(invalid.get("ctx", {}).get("error", "")).rstrip(".")
        detail = (_("The body is not valid JSON at position {position}: {reason}.")
                  if reason else _("The body is not valid JSON at position {position}."))
        return problem_response(
            400, "invalid-json",
            detail.format(position=position, reason=f"{reason[:1].lower()}{reason[1:]}"),
            title=_title(say, None, 400), instance=request.url.path, position=position)
    errors = [
        {
            # ("query", "limit") reads better as "limit", and says which field is wrong.
            "field": ".".join(str(part) for part in error["loc"][1:]) or str(error["loc"][0]),
            "location": str(error["loc"][0]),
            "message": field_message(error),
        }
        for error in exc.errors()
    ]
    names = ", ".join(sorted({error["field"] for error in errors}))
    return problem_response(422, "validation-error",
                            _("Some fields are not valid: {names}.").format(names=names),
                            title=_title(say, "Unprocessable Content", 422),
                            instance=request.url.path, errors=errors)


async def _handle_pool_exhausted(say: Say, request: Request, exc: Exception) -> JSONResponse:
    # Every database connection stayed busy for the pool's whole timeout: the service is
    # overloaded, not broken. Say so, and when to come back.
    logger.warning("no database connection became free in time for %s", request.url.path)
    return problem_response(503, "busy", _(
        "The service is too busy to take this request right now. Please try again in a "
        "few seconds."), title=_title(say, None, 503),
        instance=request.url.path, headers={"Retry-After": "2"})


def install_problem_handlers(app: FastAPI, *, in_readers_language: bool = False) -> None:
    """Answer every error raised inside a route as problem+json: details in the
    request's language, the standard titles in English, or also in the request's
    language when `in_readers_language` (an app whose pages show them)."""
    say: Say = gettext if in_readers_language else _as_written
    app.add_exception_handler(Problem, partial(_handle_problem, say))
    app.add_exception_handler(sqlalchemy.exc.TimeoutError, partial(_handle_pool_exhausted, say))
    app.add_exception_handler(StarletteHTTPException, partial(_handle_http_exception, say))
    app.add_exception_handler(RequestValidationError, partial(_handle_validation_error, say))
