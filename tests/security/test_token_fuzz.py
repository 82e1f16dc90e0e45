"""Malformed access tokens are the caller's mistake: a 401, never a 500.

A JWT whose header PyJWT refuses before any signature is checked — a `kid` that is not
a string (null, 1, true, a list), a `crit` naming an extension nobody supports, a `crit`
that is not a list — once escaped `TokenVerifier.verify` as a PyJWT error it did not
catch, and every service that reads tokens answered 500 (the gateway's public product
list too, with no login: its rate limit reads the token). Thirty of them fired a
HighErrorRate alert.

Two layers: hypothesis throws a few hundred generated headers, payloads and signatures
at the verifier itself (fast, in-process); then a fixed set of the known-bad headers
goes over real HTTP to a route of every service that reads tokens, and through the
gateway.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kansoku.kit.auth import AUDIENCE, ISSUER, TokenVerifier
from kansoku.kit.errors import Problem
from tests.services.shop import Infrastructure, ServedShop, serve_shop
from tests.support import serve_in_thread
from tests.tokens import TokenIssuer

ISSUER_KEYS = TokenIssuer()


def segment(value: Any) -> str:
    """One base64url segment of a JWT: JSON for a dict or list, the bytes as they are."""
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def good_claims() -> dict[str, Any]:
    now = int(datetime.now(UTC).timestamp())
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": "someone", "iat": now,
            "exp": now + 600}


#: JSON values of every shape, for header fields and claims.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8)

headers = st.fixed_dictionaries(
    {},
    optional={"alg": st.sampled_from(["RS256", "HS256", "none", "ES256"]) | json_values,
              "kid": st.just(ISSUER_KEYS.signer.kid) | json_values,
              "crit": st.lists(st.text(max_size=8), max_size=2) | json_values,
              "typ": json_values, "b64": json_values, "jku": json_values})

payloads = st.one_of(st.just(good_claims()), st.dictionaries(st.text(max_size=8), json_values,
                                                             max_size=4), json_values)


def outcome(token: str) -> int:
    """The status `verify` answers a token with (200: it took it)."""
    try:
        asyncio.run(TokenVerifier(jwks=ISSUER_KEYS.signer.jwks()).verify(token))
    except Problem as problem:
        return problem.status
    return 200


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=headers | json_values, payload=payloads,
       signature=st.binary(max_size=64) | st.just(b""))
def test_no_generated_token_is_anything_but_a_401(header: Any, payload: Any, signature: bytes
                                                  ) -> None:
    token = f"{segment(header)}.{segment(payload)}.{segment(signature)}"
    assert outcome(token) == 401


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=200))
def test_no_string_is_anything_but_a_401(text: str) -> None:
    assert outcome(text) == 401


#: Headers PyJWT refuses while reading them, each once a 500: (name, token).
MALFORMED = {
    **{f"kid {json.dumps(kid)}": {"alg": "RS256", "kid": kid}
       for kid in (None, 1, True, ["a"], {"a": 1}, "")},
    "crit unknown": {"alg": "RS256", "kid": ISSUER_KEYS.signer.kid, "crit": ["exp"]},
    "crit not a list": {"alg": "RS256", "kid": ISSUER_KEYS.signer.kid, "crit": "b64"},
    "alg none": {"alg": "none", "kid": ISSUER_KEYS.signer.kid},
    "header a list": ["RS256"],
}


def malformed_tokens() -> dict[str, str]:
    forged = {name: f"{segment(header)}.{segment(good_claims())}.{segment(b'sig')}"
              for name, header in MALFORMED.items()}
    # Signed for real by a key the services trust, yet naming an unknown critical
    # extension: refused all the same.
    signed = ISSUER_KEYS.signer.sign(good_claims() | {"role": "admin"})
    header = json.loads(base64.urlsafe_b64decode(signed.split(".")[0] + "=="))
    forged["signed, crit unknown"] = (
        f"{segment(header | {'crit': ['x-kansoku']})}.{signed.split('.', 1)[1]}")
    forged["not a JWT"] = "Bearer"
    return forged


def test_a_real_token_still_passes() -> None:
    """The verifier the fuzz runs against takes what identity signs (so a 401 above is
    the token's fault, not the verifier's)."""
    assert outcome(ISSUER_KEYS.token()) == 200


#: A route of each service that needs the caller's token and no body: (method, path).
TOKEN_ROUTES = {
    "identity": ("GET", "/users/me"), "inventory": ("GET", "/inventory"),
    "cart": ("GET", "/cart"), "orders": ("GET", "/orders"),
    "payments": ("GET", "/charges/00000000-0000-0000-0000-000000000000"),
    "worker": ("GET", "/mailbox"), "catalog": ("DELETE", "/products/999999"),
    "lab": ("POST", "/scenarios/n-plus-one")}


@pytest.fixture(scope="module")
async def shop(postgres_url: str, valkey_url: str, nats_url: str
               ) -> AsyncIterator[ServedShop]:
    """Every service that reads tokens, each checking them with identity's real keys."""
    async with serve_shop(Infrastructure(postgres_url, valkey_url, nats_url),
                          ["identity", "catalog", "inventory", "cart", "payments", "orders",
                           "worker", "lab"]) as served:
        yield served


async def test_every_service_answers_a_malformed_token_with_401(shop: ServedShop) -> None:
    answers: dict[str, int] = {}
    async with httpx.AsyncClient(timeout=20) as client:
        for service, (method, path) in TOKEN_ROUTES.items():
            for name, token in malformed_tokens().items():
                answer = await client.request(method, shop.urls[service] + path,
                                              headers={"Authorization": f"Bearer {token}"})
                answers[f"{service} {path} ({name})"] = answer.status_code
                if answer.status_code == 401:
                    assert answer.headers["content-type"] == "application/problem+json"
    assert {key: status for key, status in answers.items() if status != 401} == {}


async def test_the_gateway_never_fails_on_a_malformed_token(shop: ServedShop) -> None:
    """Public routes serve (the token is not needed); logged-in ones answer 401."""
    with serve_in_thread(shop.gateway(), lifespan="on") as gateway:
        async with httpx.AsyncClient(base_url=f"{gateway}/api/v1", timeout=20) as client:
            for name, token in malformed_tokens().items():
                bearer = {"Authorization": f"Bearer {token}"}
                products = await client.get("/products", headers=bearer)
                me = await client.get("/users/me", headers=bearer)
                assert (name, products.status_code, me.status_code) == (name, 200, 401)
