"""Identity on a real PostgreSQL: accounts, argon2 hashes, JWTs with JWKS, refresh
rotation. Passwords and tokens never come back where they should not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from fastapi import FastAPI
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kansoku.kit.auth import ServiceCredentials, TokenVerifier
from kansoku.kit.errors import Problem
from kansoku.kit.http import BreakerPolicy, CircuitBreakers, ServiceClient
from kansoku.kit.telemetry import Telemetry
from kansoku.services.identity import demo
from kansoku.services.identity.app import create_app
from kansoku.services.identity.schemas import ServiceTokenRequest
from kansoku.services.identity.service import Signer, issue_service_token
from kansoku.services.identity.settings import Settings
from tests.services.shop import NO_LOGIN_LOCKS
from tests.support import migrate

SERVICE_SECRET = "the-stack-service-secret"


@pytest.fixture(scope="module")
async def identity_app(postgres_url: str) -> AsyncIterator[FastAPI]:
    await migrate(postgres_url, "identity")
    app = create_app(Settings(database_url=postgres_url, service_secret=SERVICE_SECRET,
                              **NO_LOGIN_LOCKS), Telemetry("identity"))
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def identity(identity_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=identity_app),
                                 base_url="http://identity") as client:
        yield client


async def register(client: httpx.AsyncClient, email: str, password: str = "long-enough-1"
                   ) -> httpx.Response:
    return await client.post("/users", json={"name": "Test User", "email": email,
                                             "password": password})


async def login(client: httpx.AsyncClient, email: str, password: str = "long-enough-1"
                ) -> dict[str, Any]:
    response = await client.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_register_then_the_same_address_again(identity: httpx.AsyncClient) -> None:
    created = await register(identity, "Reg@Example.com")
    again = await register(identity, "reg@example.COM")
    assert created.status_code == 201
    body = created.json()
    assert body["email"] == "reg@example.com" and body["role"] == "customer"
    assert "password" not in created.text and "long-enough-1" not in created.text
    assert again.status_code == 409
    assert again.json()["field"] == "email"


async def test_a_refusal_speaks_the_readers_language_and_keeps_its_code(
        identity: httpx.AsyncClient) -> None:
    """The gateway passes the reader's language on as Accept-Language: the sentence
    follows it; what programs match on (type, field) does not."""
    await register(identity, "taken-ja@example.com")
    in_japanese = await identity.post("/users", headers={"Accept-Language": "ja"}, json={
        "name": "山田", "email": "taken-ja@example.com", "password": "long-enough-1"})
    in_english = await register(identity, "taken-ja@example.com")
    assert in_japanese.status_code == in_english.status_code == 409
    japanese, english = in_japanese.json(), in_english.json()
    assert japanese["detail"] == ("taken-ja@example.com のアカウントはすでにあります。"
                                  "ログインしてください。")
    assert english["detail"] == ("An account with taken-ja@example.com exists already: "
                                 "log in instead.")
    assert japanese["type"] == english["type"] == "https://kansoku.dev/problems/email-taken"
    assert japanese["field"] == english["field"] == "email"
    assert japanese["title"] == english["title"] == "Conflict"
    assert in_japanese.headers["content-language"] == "ja"

    wrong = await identity.post("/auth/login", headers={"Accept-Language": "ja"}, json={
        "email": "taken-ja@example.com", "password": "not-the-password"})
    assert wrong.status_code == 401
    assert wrong.json()["detail"] == "メールアドレスまたはパスワードが正しくありません。"
    assert wrong.json()["type"].endswith("/bad-credentials")


async def test_bad_registrations_name_the_field_and_never_echo_the_password(
    identity: httpx.AsyncClient,
) -> None:
    short = await register(identity, "short@example.com", password="2short")
    bad_email = await register(identity, "not-an-address")
    assert short.status_code == 422
    assert [e["field"] for e in short.json()["errors"]] == ["password"]
    assert "2short" not in short.text
    assert bad_email.status_code == 422
    assert [e["field"] for e in bad_email.json()["errors"]] == ["email"]


async def test_passwords_are_stored_as_argon2id(identity: httpx.AsyncClient,
                                                postgres_url: str) -> None:
    await register(identity, "hashed@example.com", password="never-stored-as-is")
    connection = await asyncpg.connect(postgres_url)
    try:
        stored = await connection.fetchval(
            "SELECT password_hash FROM identity.users WHERE email = 'hashed@example.com'")
    finally:
        await connection.close()
    assert stored.startswith("$argon2id$")
    assert "never-stored-as-is" not in stored


async def test_login_gives_tokens_that_verify_with_the_published_keys(
    identity: httpx.AsyncClient,
) -> None:
    await register(identity, "login@example.com")
    tokens = await login(identity, "login@example.com")
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 900
    jwks = (await identity.get("/.well-known/jwks.json")).json()
    assert all("d" not in key for key in jwks["keys"]), "no private key material"
    principal = await TokenVerifier(jwks=jwks).verify(tokens["access_token"])
    assert principal.email == "login@example.com"
    assert principal.role == "customer"


async def test_wrong_password_and_unknown_address_get_the_same_answer(
    identity: httpx.AsyncClient,
) -> None:
    await register(identity, "known@example.com")
    wrong = await identity.post("/auth/login", json={"email": "known@example.com",
                                                     "password": "wrong-password"})
    unknown = await identity.post("/auth/login", json={"email": "nobody@example.com",
                                                       "password": "wrong-password"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_refresh_tokens_rotate_and_cannot_be_reused(identity: httpx.AsyncClient) -> None:
    await register(identity, "rotate@example.com")
    first = await login(identity, "rotate@example.com")
    second = await identity.post("/auth/refresh",
                                 json={"refresh_token": first["refresh_token"]})
    reused = await identity.post("/auth/refresh",
                                 json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    assert reused.status_code == 401


async def test_profile_needs_a_valid_token(identity: httpx.AsyncClient,
                                           identity_app: FastAPI) -> None:
    await register(identity, "me@example.com")
    tokens = await login(identity, "me@example.com")
    me = await identity.get("/users/me", headers=bearer(tokens["access_token"]))
    anonymous = await identity.get("/users/me")
    garbage = await identity.get("/users/me", headers=bearer("not.a.token"))
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    claims["exp"] = datetime.now(UTC) - timedelta(minutes=1)
    expired = await identity.get("/users/me",
                                 headers=bearer(identity_app.state.signer.sign(claims)))
    forged = await identity.get("/users/me", headers=bearer(jwt.encode(
        {**claims, "exp": datetime.now(UTC) + timedelta(hours=1)}, "a-guessed-secret-" * 3,
        algorithm="HS256", headers={"kid": identity_app.state.signer.kid})))
    assert me.status_code == 200 and me.json()["email"] == "me@example.com"
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert garbage.status_code == 401
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    assert forged.status_code == 401


async def test_changing_the_password_ends_other_sessions(identity: httpx.AsyncClient) -> None:
    await register(identity, "change@example.com")
    tokens = await login(identity, "change@example.com")
    changed = await identity.patch("/users/me", headers=bearer(tokens["access_token"]),
                                   json={"name": "New Name", "password": "brand-new-pass",
                                         "current_password": "long-enough-1"})
    assert changed.status_code == 200 and changed.json()["name"] == "New Name"
    stale = await identity.post("/auth/refresh",
                                json={"refresh_token": tokens["refresh_token"]})
    assert stale.status_code == 401
    await login(identity, "change@example.com", password="brand-new-pass")


async def test_demo_accounts(identity_app: FastAPI, identity: httpx.AsyncClient) -> None:
    db = identity_app.state.db
    async with db.transaction() as session:
        await demo.seed(session)
    async with db.transaction() as session:
        assert await demo.seed(session) == 0
    admin = await login(identity, "admin@example.com", password="admin-pass-1234")
    alice = await login(identity, "alice@example.com", password="alice-pass-1234")
    verifier = identity_app.state.tokens
    assert (await verifier.verify(admin["access_token"])).is_admin
    assert not (await verifier.verify(alice["access_token"])).is_admin


async def test_a_service_with_the_secret_gets_a_service_token(identity: httpx.AsyncClient
                                                              ) -> None:
    answer = await identity.post("/auth/service-token",
                                 json={"service": "worker", "secret": SERVICE_SECRET})
    assert answer.status_code == 200, answer.text
    verifier = TokenVerifier(jwks=(await identity.get("/.well-known/jwks.json")).json())
    principal = await verifier.verify(answer.json()["access_token"])
    assert (principal.user_id, principal.role, principal.is_service) == (
        "service:worker", "service", True)
    assert not principal.is_admin
    # It is no user's token: no profile, and no 500 from reading its subject as an id.
    mine = await identity.get("/users/me", headers={
        "Authorization": f"Bearer {answer.json()['access_token']}"})
    assert mine.status_code == 404, mine.text


async def test_a_service_token_is_only_for_a_service_of_the_shop(identity: httpx.AsyncClient
                                                                 ) -> None:
    """Services admit each other by name: the secret buys no token for a made-up one."""
    answer = await identity.post("/auth/service-token",
                                 json={"service": "everything", "secret": SERVICE_SECRET})
    assert answer.status_code == 422, answer.text
    assert answer.json()["type"].endswith("unknown-service")


async def test_a_wrong_service_secret_is_refused(identity: httpx.AsyncClient) -> None:
    answer = await identity.post("/auth/service-token",
                                 json={"service": "worker", "secret": "guess"})
    assert answer.status_code == 401
    assert answer.json()["type"].endswith("bad-service-secret")
    assert "guess" not in answer.text


def test_without_a_configured_secret_no_service_token_is_issued() -> None:
    ask = ServiceTokenRequest.model_validate({"service": "worker", "secret": "anything"})
    with pytest.raises(Problem) as refused:
        issue_service_token(ask, None, Signer(*Signer.new_key()), access_seconds=60)
    assert refused.value.status == 503
    assert "KANSOKU_SERVICE_SECRET" in refused.value.detail


async def test_service_credentials_fetch_once_and_reuse(identity_app: FastAPI) -> None:
    calls: list[str] = []

    class Counting(httpx.ASGITransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            calls.append(request.url.path)
            return await super().handle_async_request(request)

    client = ServiceClient("identity", "http://identity", CircuitBreakers(BreakerPolicy()),
                           transport=Counting(app=identity_app))
    credentials = ServiceCredentials("worker", client, SERVICE_SECRET)
    first, second = await credentials.headers(), await credentials.headers()
    await client.aclose()
    assert first == second and first["Authorization"].startswith("Bearer ")
    assert calls == ["/auth/service-token"]


async def test_start_up_is_untraced_and_keys_are_fetched_in_the_callers_trace(
        postgres_url: str) -> None:
    """Neither identity's start-up (loading its signing key) nor a service fetching its
    keys makes a trace of its own: the first is not traced, the second is a child of the
    request that met the unknown key."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    await migrate(postgres_url, "identity")
    app = create_app(Settings(database_url=postgres_url, service_secret=SERVICE_SECRET),
                     Telemetry("identity", tracer_provider=provider))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://identity") as client:
        assert [span.name for span in exporter.get_finished_spans()] == []
        await register(client, "keys@example.com")
        token = (await login(client, "keys@example.com"))["access_token"]
        exporter.clear()
        verifier = TokenVerifier("http://identity/.well-known/jwks.json", client=client)
        with provider.get_tracer("orders").start_as_current_span("GET /orders") as request:
            await verifier.verify(token)
    (fetched,) = [span for span in exporter.get_finished_spans()
                  if span.name == "GET /.well-known/jwks.json"]
    assert fetched.parent is not None
    assert (fetched.context.trace_id, fetched.parent.span_id) == (
        request.get_span_context().trace_id, request.get_span_context().span_id)
