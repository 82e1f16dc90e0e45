"""A stolen access token is not the account: changing the password or the e-mail
address needs the current password (`PATCH /api/v1/users/me`, gateway → identity).

Before: `{"password": "…"}` alone changed it, so a 15-minute token became a permanent
takeover. Wrong current passwords count towards the login lock, as wrong logins do.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.services.shop import Infrastructure, serve_shop

PASSWORD = "owner-pass-1234"
#: Identity's login lock as configured by default (a served shop turns it off).
LOGIN_LOCKS = {"login_account_failures": 5, "login_address_failures": 20}


@pytest.fixture(scope="module")
async def api(postgres_url: str, valkey_url: str, nats_url: str
              ) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_shop(Infrastructure(postgres_url, valkey_url, nats_url), ["identity"],
                          settings={"identity": LOGIN_LOCKS}) as shop:
        app = shop.gateway(rate_limit_per_ip=0, rate_limit_per_user=0)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app, client=("198.51.100.40", 5000)),
                base_url="http://shop.test/api/v1") as client:
            yield client


async def owner(api: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    email = f"owner-{uuid.uuid4().hex[:10]}@example.com"
    created = await api.post("/users", json={"name": "Owner", "email": email,
                                             "password": PASSWORD})
    assert created.status_code == 201
    tokens = (await api.post("/auth/login", json={"email": email, "password": PASSWORD})
              ).json()
    return email, {"Authorization": f"Bearer {tokens['access_token']}"}


async def logs_in(api: httpx.AsyncClient, email: str, password: str) -> bool:
    answer = await api.post("/auth/login", json={"email": email, "password": password})
    return answer.status_code == 200


async def test_a_token_alone_cannot_change_the_password_or_the_address(
        api: httpx.AsyncClient) -> None:
    email, stolen = await owner(api)
    for change in ({"password": "attacker-pass-1"},
                   {"email": f"attacker-{uuid.uuid4().hex[:8]}@example.com"}):
        refused = await api.patch("/users/me", headers=stolen, json=change)
        assert refused.status_code == 422, refused.text
        assert refused.json()["field"] == "current_password"
        wrong = await api.patch("/users/me", headers=stolen,
                                json={**change, "current_password": "a-guess"})
        assert wrong.status_code == 403 and wrong.json()["field"] == "current_password"
    assert await logs_in(api, email, PASSWORD), "nothing changed"
    renamed = await api.patch("/users/me", headers=stolen, json={"name": "Still Me"})
    assert renamed.status_code == 200, "a name needs no password"


async def test_the_owner_changes_both_with_the_current_password(api: httpx.AsyncClient
                                                                ) -> None:
    email, me = await owner(api)
    new_email = f"moved-{uuid.uuid4().hex[:10]}@example.com"
    changed = await api.patch("/users/me", headers=me, json={
        "email": new_email, "password": "owner-new-pass-1", "current_password": PASSWORD})
    assert changed.status_code == 200, changed.text
    assert changed.json()["email"] == new_email
    assert await logs_in(api, new_email, "owner-new-pass-1")
    assert not await logs_in(api, email, PASSWORD)


async def test_guessing_the_current_password_meets_the_login_lock(api: httpx.AsyncClient
                                                                  ) -> None:
    email, stolen = await owner(api)
    statuses = [(await api.patch("/users/me", headers=stolen, json={
        "password": "attacker-pass-1", "current_password": f"guess-{n}"})).status_code
        for n in range(6)]
    assert statuses == [403] * 5 + [429]
    assert not await logs_in(api, email, PASSWORD), "the account is locked for a while"


async def test_the_public_schema_asks_for_the_current_password(api: httpx.AsyncClient
                                                               ) -> None:
    document = (await api.get("http://shop.test/api/openapi.json")).json()
    change = document["components"]["schemas"]["ProfileChange"]["properties"]
    assert {"name", "email", "password", "current_password"} <= set(change)
    responses = document["paths"]["/api/v1/users/me"]["patch"]["responses"]
    assert {"403", "422"} <= set(responses)
