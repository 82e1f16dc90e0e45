"""Every problem a person may read is in the reader's language (issue 23): no `Problem(`
(nor the kit's other ways of answering one) in the services, the kit or the contracts
writes its `detail` as a plain English literal outside `_()` — except the few listed
here, which only a program ever reads. A new English-only detail fails this test."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from kansoku.kit import i18n
from kansoku.kit.errors import DependencyUnavailable, Problem
from kansoku.kit.i18n import Language

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "kansoku"
#: Where problems are raised: the services (the gateway too), the kit and the contracts.
SOURCES: Final = ("services", "kit", "contracts")
#: The calls that translate a text (`N_` marks one for a later lookup).
TRANSLATORS: Final = frozenset({"_", "gettext", "ngettext", "lazy_gettext", "N_"})
#: For each call that answers a problem: where its code is (None: it has none of its
#: own) and where the sentence a person reads is, each as (position, keyword).
Argument = tuple[int, str]
PROBLEM_CALLS: Final[dict[str, tuple[Argument | None, Argument]]] = {
    # Problem(status, code, detail), problem_response(status, code, detail)
    "Problem": ((1, "code"), (2, "detail")),
    "problem_response": ((1, "code"), (2, "detail")),
    # ActiveFault.fail(error, status, code, detail)
    "fail": ((2, "code"), (3, "detail")),
    # kit.auth.unauthorized(detail), kit.errors.invalid_parameter(field, message)
    "unauthorized": (None, (0, "detail")),
    "invalid_parameter": (None, (1, "message")),
}

#: Details only a program reads, left in English on purpose: (file, problem code) → who
#: reads it.
PROGRAMS_ONLY: Final = {
    ("services/identity/service.py", "service-tokens-disabled"):
        "a service asking identity for its service token",
    ("services/identity/service.py", "bad-service-secret"):
        "a service asking identity for its service token",
    ("services/identity/service.py", "unknown-service"):
        "a service asking identity for its service token",
    ("services/identity/service.py", "user-not-found"):
        "a service token asking for an account (people's tokens have one)",
    ("services/catalog/service.py", "stale-thumbnail"): "the worker, storing a thumbnail",
    ("services/catalog/api.py", "validation-error"): "the worker, storing a thumbnail",
    ("services/catalog/api.py", "thumbnail-too-large"): "the worker, storing a thumbnail",
    ("services/catalog/service.py", "image-version-gone"):
        "a browser's <img>: nobody sees the body",
    ("services/catalog/service.py", "thumbnail-pending"):
        "a browser's <img>, which tries again after Retry-After",
    ("services/inventory/service.py", "reservation-not-found"):
        "orders, about its reservations",
    ("services/inventory/service.py", "reservation-gone"): "orders, about its reservations",
    ("services/inventory/service.py", "inventory-failed"):
        "a fault flag's 500: callers answer their own dependency-unavailable",
    ("services/payments/service.py", "payment-processing-failed"):
        "a fault flag's 500: orders answers its own payments-unavailable",
    ("services/payments/service.py", "payments-unreachable"):
        "a fault flag's 504: orders answers its own payments-unavailable",
    ("services/payments/service.py", "charge-mismatch"): "orders, charging an order",
    ("services/payments/service.py", "payment-not-found"): "orders, refunding a payment",
    ("services/lab/service.py", "users-only"): "a service's token sent to the lab",
    ("services/worker/service.py", "dependency-refused"):
        "the worker's event functions: their failures go to dead letters and logs",
    ("services/gateway/rum/routes.py", "payload-too-large"): "the pages' telemetry script",
    ("services/gateway/rum/routes.py", "cross-site"): "the pages' telemetry script",
    ("services/gateway/rum/routes.py", "unsupported-media-type"):
        "the pages' telemetry script",
    ("services/gateway/rum/routes.py", "bad-json"): "the pages' telemetry script",
}


def _name(function: ast.expr) -> str | None:
    if isinstance(function, ast.Name):
        return function.id
    if isinstance(function, ast.Attribute):
        return function.attr
    return None


def _is_translated(node: ast.expr) -> bool:
    """`_("…")`, `ngettext(…)`, or such a text `.format(…)`-ed."""
    if not isinstance(node, ast.Call):
        return False
    if _name(node.func) in TRANSLATORS:
        return True
    return (isinstance(node.func, ast.Attribute) and node.func.attr == "format"
            and _is_translated(node.func.value))


def _english_literal(node: ast.expr) -> bool:
    """Whether `node` writes words as a literal outside `_()`: a string or f-string with
    letters, alone or joined to others (a variable or a call is not looked into)."""
    if _is_translated(node):
        return False
    match node:
        case ast.Constant(value=str() as text):
            return any(character.isalpha() for character in text)
        case ast.JoinedStr(values=parts):
            return any(_english_literal(part) for part in parts)
        case ast.BinOp(left=left, right=right):
            return _english_literal(left) or _english_literal(right)
        case ast.IfExp(body=body, orelse=orelse):
            return _english_literal(body) or _english_literal(orelse)
        case ast.Call(func=ast.Attribute(attr="format", value=value)):
            return _english_literal(value)
    return False


def _argument(call: ast.Call, where: Argument | None) -> ast.expr | None:
    if where is None:
        return None
    position, keyword = where
    if position < len(call.args):
        return call.args[position]
    return next((given.value for given in call.keywords if given.arg == keyword), None)


def english_details(source: str) -> Iterator[tuple[int, str]]:
    """(line, code) of every problem in `source` whose detail is an English literal; the
    code is the problem's (`email-taken`), or the call's name where it has none."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and (name := _name(node.func)) in PROBLEM_CALLS:
            code_at, detail_at = PROBLEM_CALLS[name]
            detail = _argument(node, detail_at)
            if detail is None or not _english_literal(detail):
                continue
            code = _argument(node, code_at)
            yield node.lineno, (code.value if isinstance(code, ast.Constant)
                                and isinstance(code.value, str) else name)
        elif isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Attribute) and target.attr == "detail"
                for target in node.targets) and _english_literal(node.value):
            yield node.lineno, "detail"


def test_no_problem_a_person_reads_is_english_only() -> None:
    found: dict[tuple[str, str], list[int]] = {}
    for folder in SOURCES:
        for path in sorted((PACKAGE / folder).rglob("*.py")):
            relative = str(path.relative_to(PACKAGE))
            for line, code in english_details(path.read_text()):
                found.setdefault((relative, code), []).append(line)
    untranslated = {f"{path}:{lines[0]} ({code})" for (path, code), lines in found.items()
                    if (path, code) not in PROGRAMS_ONLY}
    assert not untranslated, (
        "write these details as _(\"… {name} …\").format(name=…), then run "
        f"scripts/messages and translate: {sorted(untranslated)}")
    stale = sorted(set(PROGRAMS_ONLY) - set(found))
    assert not stale, f"no longer English (or gone): take them off PROGRAMS_ONLY: {stale}"


def test_the_check_finds_english_details_and_passes_translated_ones() -> None:
    def codes(source: str) -> list[str]:
        return [code for _line, code in english_details(source)]

    assert codes('raise Problem(404, "gone", f"There is no order {number}.")') == ["gone"]
    assert codes('Problem(409, "taken", "Taken " + _("already."))') == ["taken"]
    assert codes('Problem(409, "x", detail="It is so.")') == ["x"]
    assert codes('raise fault.fail(Boom(), 500, "failed", "It failed.")') == ["failed"]
    assert codes('raise unauthorized("Log in.")') == ["unauthorized"]
    assert codes('self.detail = f"Order {n} is unknown."') == ["detail"]
    assert codes('Problem(404, "gone", _("There is no order {n}.").format(n=n))') == []
    assert codes('Problem(404, "gone", ngettext("One {n}.", "{n} of them.", n).format(n=n))'
                 ) == []
    assert codes('Problem(403, "csrf", f"{EXPIRED} " + _("Reload the page."))') == []
    assert codes('Problem(503, "away", str(exc))') == [], "a variable is not looked into"


def test_a_problem_raised_in_a_japanese_request_is_japanese() -> None:
    """The request's language, set by the kit's middleware, is the detail's: raised while
    Japanese is current, a problem reads Japanese; the code stays."""
    i18n.set_language(Language.JAPANESE)
    try:
        away = DependencyUnavailable("payments", "cannot connect: ConnectError")
    finally:
        i18n.set_language(Language.ENGLISH)
    assert away.detail.startswith("payments サービスは現在利用できません")
    assert "cannot connect: ConnectError" in away.detail, "the reason, as it was"
    assert away.code == "dependency-unavailable" and away.status == 503
    assert isinstance(away, Problem)
