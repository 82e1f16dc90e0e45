"""What the non-OTLP intakes (X-Ray, EMF) share: reading a JSON document off the wire,
and the error for input they cannot read."""

from __future__ import annotations

import json
from typing import Any


class BadDocument(ValueError):
    """Input an intake cannot read. The message names the kind of fault, not the input:
    the listeners count each kind and log it once, whatever a sender repeats."""


def json_object(data: bytes | str, what: str) -> dict[str, Any]:
    """`data` as a JSON object, or BadDocument("<what> is not JSON" / "… not a JSON
    object"). Nesting too deep for the parser is not JSON either."""
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise BadDocument(f"{what} is not JSON") from exc
    if not isinstance(document, dict):
        raise BadDocument(f"{what} is not a JSON object")
    return document
