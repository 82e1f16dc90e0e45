"""The OpenAPI document every service publishes, completed with what the kit answers.

FastAPI documents what a route returns, and a 422 in its own `HTTPValidationError`
shape, as `application/json`. Every error here is a problem (`kit.errors`) sent as
`application/problem+json`, and several come from the kit rather than the route: 400
for a body that is not JSON, 401 and 403 from `kit.auth`, 413 for a body over the limit,
422 for a field that is not valid, 503 when something the request needs is away. So,
once per app, `complete_openapi` goes through every operation and writes down the answers it can
give — each error with the `ProblemDetails` schema — so the document is what is sent.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, Final

from fastapi import FastAPI

from kansoku.kit.errors import PROBLEM_MEDIA_TYPE

#: A route's own error answer, for its `responses`: `responses={404: PROBLEM}`. The
#: completed document gives it the `ProblemDetails` schema and a description.
PROBLEM: Final[dict[str, Any]] = {"content": {PROBLEM_MEDIA_TYPE: {}}}

_PROBLEM_REF: Final = {"$ref": "#/components/schemas/ProblemDetails"}
_VALIDATION_PROBLEM_REF: Final = {"$ref": "#/components/schemas/ValidationProblemDetails"}

#: RFC 9457 problem details as every kansoku service writes them.
PROBLEM_SCHEMA: Final[dict[str, Any]] = {
    "title": "ProblemDetails",
    "type": "object",
    "description": "RFC 9457 problem details. `type` ends in a stable code "
                   "(`…/problems/out-of-stock`); `request_id` finds the request in the "
                   "logs and traces. Some problems add members (`field`, `dependency`, …).",
    "required": ["type", "title", "status", "detail", "request_id"],
    "properties": {
        "type": {"type": "string", "examples": ["https://kansoku.dev/problems/not-found"]},
        "title": {"type": "string", "examples": ["Not Found"]},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "One sentence a person can act on"},
        "instance": {"type": "string", "description": "The path that was asked for"},
        "request_id": {"type": ["string", "null"]},
    },
}

#: A 422: the problem with one entry per field that is not valid.
VALIDATION_PROBLEM_SCHEMA: Final[dict[str, Any]] = {
    "title": "ValidationProblemDetails",
    "allOf": [_PROBLEM_REF, {
        "type": "object",
        "properties": {"errors": {"type": "array", "items": {
            "type": "object",
            "required": ["field", "location", "message"],
            "properties": {
                "field": {"type": "string", "examples": ["items.0.quantity"]},
                "location": {"type": "string", "examples": ["body", "query", "path"]},
                "message": {"type": "string"},
            }}}},
    }],
}

#: Why each answer the kit adds is given.
_DESCRIPTIONS: Final[dict[int, str]] = {
    400: "The body cannot be read: not valid JSON (the problem says where), or not "
         "the form documented",
    401: "No valid access token: log in and send `Authorization: Bearer <token>`",
    403: "The access token's role may not do this",
    413: "The request body is larger than this endpoint takes",
    422: "A field is not valid: `errors` names each one and why",
    429: "Too many requests: `Retry-After` says when to come back",
    503: "Something this request needs is unavailable or too busy right now; try again "
         "(`Retry-After`, when sent, says when)",
}

_RETRY_AFTER: Final = {"Retry-After": {
    "description": "Seconds to wait before trying again",
    "schema": {"type": "integer", "minimum": 0}}}

_METHODS: Final = frozenset({"get", "put", "post", "delete", "options", "head", "patch",
                             "trace"})


def _answers_of(operation: dict[str, Any]) -> set[int]:
    """The error statuses the kit, not the route itself, can give for `operation`."""
    answers = {503}
    content = operation.get("requestBody", {}).get("content", {})
    if content:
        answers |= {400, 413, 422}
    if operation.get("parameters"):
        answers.add(422)
    requirements = operation.get("security") or []
    if requirements:
        answers.add(401)
    # `kit.auth` names the roles a route needs in its requirement (OpenAPI 3.1 allows
    # role names for an HTTP scheme): a token without one of them gets 403.
    if any(roles for requirement in requirements for roles in requirement.values()):
        answers.add(403)
    return answers


def _is_problem(status: str, response: dict[str, Any]) -> bool:
    """Whether `response` is an error answer that has no model of its own (the lab's
    deliberate 500 has one)."""
    if not (status[0] in "45" or status == "default"):
        return False
    content = response.get("content") or {}
    schema = content.get("application/json", {}).get("schema", {})
    return (not content or set(content) == {PROBLEM_MEDIA_TYPE}
            or schema.get("$ref", "").endswith("/HTTPValidationError"))


def _describe(status: int, response: dict[str, Any]) -> None:
    media_schema = _VALIDATION_PROBLEM_REF if status == 422 else _PROBLEM_REF
    response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": media_schema}}
    generic = {None, "", "Additional Response", "Validation Error"}
    if response.get("description") in generic or (
            status in _DESCRIPTIONS and response.get("description") == _phrase(status)):
        response["description"] = _DESCRIPTIONS.get(status, _phrase(status))
    if status in (429, 503):
        response["headers"] = _RETRY_AFTER


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """`document` (FastAPI's OpenAPI) with every operation's error answers as problems;
    changed in place and returned."""
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status in _answers_of(operation):
                responses.setdefault(str(status), {})
            for status, response in responses.items():
                if _is_problem(status, response):
                    _describe(int(status) if status.isdigit() else 500, response)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    # Named apart from any model of an app's own (the explorer's detected `Problem`).
    schemas["ProblemDetails"] = PROBLEM_SCHEMA
    schemas["ValidationProblemDetails"] = VALIDATION_PROBLEM_SCHEMA
    return document


def complete_openapi(app: FastAPI) -> None:
    """Make `app` publish the completed document (built once, on the first request for
    it, like FastAPI's own)."""
    build = app.openapi
    completed: list[int] = []  # the ids of the documents completed (FastAPI caches one)

    def openapi() -> dict[str, Any]:
        document = build()  # FastAPI's, cached until the routes change
        if id(document) not in completed:
            complete(document)
            completed.append(id(document))
        return document

    app.openapi = openapi  # type: ignore[method-assign]
