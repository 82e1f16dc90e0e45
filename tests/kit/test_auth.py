"""Token checks in any service: 401 without a valid token, 403 without the admin role,
keys fetched from identity's JWKS and re-fetched for a key they have not seen."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from kansoku.kit.auth import AUDIENCE, ISSUER, AdminUser, CurrentUser, TokenVerifier
from kansoku.kit.errors import Problem
from kansoku.services.identity.service import Signer
from tests.kit.apps import make_app
from tests.support import free_ports


def signer() -> Signer:
    return Signer(*Signer.new_key())


def token(key: Signer, role: str = "customer") -> str:
    now = datetime.now(UTC)
    return key.sign({"iss": ISSUER, "aud": AUDIENCE, "sub": "user-1", "email": "u@x.test",
                     "name": "U", "role": role, "iat": now, "exp": now + timedelta(minutes=5)})


def guarded_app(verifier: TokenVerifier) -> httpx.AsyncClient:
    app = make_app()
    app.state.tokens = verifier

    @app.get("/mine")
    async def mine(user: CurrentUser) -> dict[str, str]:
        return {"user": user.user_id}

    @app.get("/admin-only")
    async def admin_only(admin: AdminUser) -> dict[str, str]:
        return {"admin": admin.user_id}

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_roles() -> None:
    key = signer()
    async with guarded_app(TokenVerifier(jwks=key.jwks())) as client:
        customer = {"Authorization": f"Bearer {token(key)}"}
        admin = {"Authorization": f"Bearer {token(key, role='admin')}"}
        assert (await client.get("/mine", headers=customer)).json() == {"user": "user-1"}
        forbidden = await client.get("/admin-only", headers=customer)
        assert forbidden.status_code == 403
        assert forbidden.headers["content-type"] == "application/problem+json"
        assert (await client.get("/admin-only", headers=admin)).status_code == 200
        assert (await client.get("/mine", headers={"Authorization": "Basic xyz"})
                ).status_code == 401


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, dict[str, Any], list[int]]]:
    """A real HTTP server publishing a JWKS that the test can change; counts fetches."""
    published: dict[str, Any] = {"keys": []}
    fetches: list[int] = []
    app = FastAPI()

    @app.get("/jwks")
    async def jwks() -> dict[str, Any]:
        fetches.append(1)
        return published

    (port,) = free_ports(1)
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/jwks", published, fetches
    server.should_exit = True
    thread.join(10)


async def test_keys_are_fetched_once_and_again_for_a_new_key(
    jwks_server: tuple[str, dict[str, Any], list[int]],
) -> None:
    url, published, fetches = jwks_server
    first, second = signer(), signer()
    published["keys"] = first.jwks()["keys"]
    verifier = TokenVerifier(url)
    for _ in range(3):
        await verifier.verify(token(first))
    assert len(fetches) == 1
    published["keys"] = first.jwks()["keys"] + second.jwks()["keys"]
    # A key it has not seen, but it fetched less than 10 s ago: no second fetch yet.
    with pytest.raises(Problem) as refused:
        await verifier.verify(token(second))
    assert refused.value.status == 401
    verifier._fetched_at -= 60  # as if the last fetch were a minute old
    assert (await verifier.verify(token(second))).user_id == "user-1"
    assert len(fetches) == 2


async def test_identity_out_of_reach_is_503_not_401() -> None:
    (closed,) = free_ports(1)
    with pytest.raises(Problem) as unavailable:
        await TokenVerifier(f"http://127.0.0.1:{closed}/jwks").verify(token(signer()))
    assert unavailable.value.status == 503
