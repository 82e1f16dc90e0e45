"""The identity service's logic: accounts, passwords, tokens."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from opentelemetry import metrics
from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.kit import semconv
from kansoku.kit.auth import (
    ALGORITHM,
    AUDIENCE,
    ISSUER,
    ROLE_CUSTOMER,
    ROLE_SERVICE,
    SERVICE_SUBJECT_PREFIX,
    Principal,
)
from kansoku.kit.clock import utc_now
from kansoku.kit.errors import Problem
from kansoku.services.identity import store
from kansoku.services.identity.models import RefreshToken, User
from kansoku.services.identity.schemas import (
    Credentials,
    ProfileChange,
    Registration,
    ServiceToken,
    ServiceTokenRequest,
    Tokens,
    UserOut,
)

#: argon2id at OWASP's recommended minimum (19 MiB, 2 passes): strong, and cheap enough
#: that a load test's logins do not exhaust a laptop's memory.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
#: Checked when the e-mail is unknown, so a wrong address takes as long as a wrong
#: password and response times do not reveal who has an account.
_DUMMY_HASH = _hasher.hash("not a real password")

_meter = metrics.get_meter("kansoku.identity")
_registrations = _meter.create_counter(semconv.METRIC_USERS_REGISTERED, unit="{user}",
                                       description="Accounts created")
_logins = _meter.create_counter(semconv.METRIC_LOGINS, unit="{login}",
                                description="Login attempts, by outcome")



def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


#: argon2 is deliberately slow, so it runs off the event loop — on these threads, one per
#: core. Each hash takes 19 MiB, and every thread that ever hashed kept its own malloc
#: arena with that much in it: the default executor's six threads on two cores grew
#: identity by 96 MiB under a login rush. Hashing is CPU-bound (argon2 lets go of the
#: GIL), so more threads than cores hash no faster; they only keep more buffers.
_hashing = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="argon2")


async def hash_password(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_hashing, _hasher.hash, password)


async def password_matches(password_hash: str, password: str) -> bool:
    try:
        return await asyncio.get_running_loop().run_in_executor(
            _hashing, _hasher.verify, password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class Signer:
    """The private key that signs access tokens, and its public half as a JWKS."""

    def __init__(self, kid: str, private_key_pem: str) -> None:
        self.kid = kid
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"signing key {kid} is not an RSA key")
        self._private_key = key

    @staticmethod
    def new_key() -> tuple[str, str]:
        """A fresh RSA key: (key id, private key PEM)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public_der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        return hashlib.sha256(public_der).hexdigest()[:16], pem

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._private_key, algorithm=ALGORITHM,
                          headers={"kid": self.kid})

    def jwks(self) -> dict[str, Any]:
        public_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self._private_key.public_key(),
                                                        as_dict=True)
        public_jwk.update(kid=self.kid, use="sig", alg=ALGORITHM)
        return {"keys": [public_jwk]}


async def load_signer(session: AsyncSession) -> Signer:
    """The oldest signing key, created on first start. Locked, so two instances starting
    together agree on one key."""
    await store.lock_signing_keys(session)
    keys = await store.signing_keys(session)
    if not keys:
        kid, pem = await asyncio.to_thread(Signer.new_key)
        await store.add_signing_key(session, kid, pem)
        return Signer(kid, pem)
    return Signer(keys[0].kid, keys[0].private_key_pem)


async def register(session: AsyncSession, registration: Registration, *, role: str = ROLE_CUSTOMER
                   ) -> UserOut:
    user = User(id=uuid.uuid4(), email=registration.email.lower(),
                name=registration.name.strip(), role=role,
                password_hash=await hash_password(registration.password.get_secret_value()))
    if not await store.add_user(session, user):
        raise Problem(409, "email-taken",
                      f"An account with {user.email} exists already: log in instead.",
                      field="email")
    _registrations.add(1)
    created = await store.get_user(session, user.id)
    assert created is not None
    return UserOut.model_validate(created)


async def _issue_tokens(session: AsyncSession, user: User, signer: Signer,
                        access_seconds: int, refresh_days: int) -> Tokens:
    now = datetime.now(UTC)
    access_token = signer.sign({
        "iss": ISSUER, "aud": AUDIENCE, "sub": str(user.id), "email": user.email,
        "name": user.name, "role": user.role, "iat": now,
        "exp": now + timedelta(seconds=access_seconds), "jti": uuid.uuid4().hex,
    })
    refresh_token = secrets.token_urlsafe(32)
    await store.add_refresh_token(session, RefreshToken(
        user_id=user.id, token_hash=_token_hash(refresh_token),
        expires_at=utc_now() + timedelta(days=refresh_days)))
    return Tokens(access_token=access_token, expires_in=access_seconds,
                  refresh_token=refresh_token)


async def login(session: AsyncSession, credentials: Credentials, signer: Signer, *,
                access_seconds: int, refresh_days: int) -> Tokens:
    user = await store.get_user_by_email(session, credentials.email.lower())
    password = credentials.password.get_secret_value()
    valid = await password_matches(user.password_hash if user else _DUMMY_HASH, password)
    if user is None or not valid:
        _logins.add(1, {"outcome": "rejected"})
        # One answer for both cases: which addresses have accounts is nobody's business.
        raise Problem(401, "bad-credentials", "The e-mail address or password is wrong.")
    _logins.add(1, {"outcome": "accepted"})
    return await _issue_tokens(session, user, signer, access_seconds, refresh_days)


async def refresh(session: AsyncSession, refresh_token: str, signer: Signer, *,
                  access_seconds: int, refresh_days: int) -> Tokens:
    """New tokens for a refresh token, which is used up (rotation)."""
    used = await store.take_refresh_token(session, _token_hash(refresh_token), utc_now())
    user = await store.get_user(session, used.user_id) if used else None
    if user is None:
        raise Problem(401, "bad-refresh-token",
                      "The refresh token is unknown, expired or already used: log in again.")
    return await _issue_tokens(session, user, signer, access_seconds, refresh_days)


def issue_service_token(ask: ServiceTokenRequest, configured: str | None, signer: Signer, *,
                        access_seconds: int) -> ServiceToken:
    """A token with the service role for a service that knows the stack's service
    secret: what the worker shows catalog when it stores a thumbnail, for example. It has
    no refresh token; the service asks again when it expires."""
    if not configured:
        raise Problem(503, "service-tokens-disabled",
                      "No service secret is configured, so no service tokens are issued: "
                      "set KANSOKU_SERVICE_SECRET for every service (kansoku up does).")
    offered = ask.secret.get_secret_value()
    if not hmac.compare_digest(offered.encode(), configured.encode()):
        raise Problem(401, "bad-service-secret", "The service secret is wrong.")
    now = datetime.now(UTC)
    token = signer.sign({
        "iss": ISSUER, "aud": AUDIENCE, "sub": f"{SERVICE_SUBJECT_PREFIX}{ask.service}",
        "name": ask.service, "role": ROLE_SERVICE, "iat": now,
        "exp": now + timedelta(seconds=access_seconds), "jti": uuid.uuid4().hex,
    })
    return ServiceToken(access_token=token, expires_in=access_seconds)


async def _account(session: AsyncSession, principal: Principal) -> User:
    """The caller's own account. A service token has none: its subject is
    `service:<name>`, not a user id."""
    if principal.is_service:
        raise Problem(404, "user-not-found", "A service token belongs to no account.")
    user = await store.get_user(session, uuid.UUID(principal.user_id))
    if user is None:
        raise Problem(404, "user-not-found", "This account no longer exists.")
    return user


async def profile(session: AsyncSession, principal: Principal) -> UserOut:
    return UserOut.model_validate(await _account(session, principal))


async def change_profile(session: AsyncSession, principal: Principal, change: ProfileChange
                         ) -> UserOut:
    user = await _account(session, principal)
    if change.name is not None:
        user.name = change.name.strip()
    if change.password is not None:
        user.password_hash = await hash_password(change.password.get_secret_value())
        # A new password logs out every other session.
        await store.revoke_refresh_tokens(session, user.id, utc_now())
    await session.flush()
    await session.refresh(user)
    return UserOut.model_validate(user)
