"""The identity service's logic: accounts, passwords, tokens."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import os
import secrets
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from opentelemetry import metrics
from opentelemetry.metrics import Meter
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
from kansoku.kit.clock import UtcClock, utc_now
from kansoku.kit.errors import Problem
from kansoku.kit.i18n import _
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
from kansoku.topology import SERVICES_BY_NAME

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

logger = logging.getLogger(__name__)


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


#: What the signing key's sealing password is derived from the service secret for:
#: HKDF's `info`, so this derived key is no other key derived from the same secret.
_SIGNING_KEY_PURPOSE = b"kansoku identity signing key at rest"
_PLAIN_PEM_HEADER = "-----BEGIN PRIVATE KEY-----"


def _sealing_password(secret: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=_SIGNING_KEY_PURPOSE).derive(secret.encode())


class Signer:
    """The private key that signs access tokens, and its public half as a JWKS."""

    def __init__(self, kid: str, private_key_pem: str, *, password: bytes | None = None
                 ) -> None:
        self.kid = kid
        key = serialization.load_pem_private_key(private_key_pem.encode(), password=password)
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

    @classmethod
    def unseal(cls, kid: str, sealed_pem: str, secret: str) -> Signer | None:
        """The key `sealed` stored, or None when `secret` is not the one it was sealed
        with."""
        try:
            return cls(kid, sealed_pem, password=_sealing_password(secret))
        except (ValueError, TypeError):
            return None

    def sealed(self, secret: str) -> str:
        """The private key as stored: PKCS#8, encrypted (cryptography's best available
        scheme) with a password derived from the service `secret`."""
        return self._private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(_sealing_password(secret))).decode()

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._private_key, algorithm=ALGORITHM,
                          headers={"kid": self.kid})

    def jwks(self) -> dict[str, Any]:
        public_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self._private_key.public_key(),
                                                        as_dict=True)
        public_jwk.update(kid=self.kid, use="sig", alg=ALGORITHM)
        return {"keys": [public_jwk]}


async def load_signer(session: AsyncSession, secret: str) -> Signer:
    """The oldest signing key that the service `secret` unseals, created (sealed) on
    first start. Locked, so two instances starting together agree on one key.

    A key stored as plain PEM (before keys were sealed) is sealed now. When the secret
    changed, no stored key unseals: a new key is made and signs from now on, so tokens
    signed before no longer verify and everyone logs in again (docs/security.md)."""
    await store.lock_signing_keys(session)
    keys = await store.signing_keys(session)
    for stored in keys:
        if stored.private_key_pem.startswith(_PLAIN_PEM_HEADER):
            signer = Signer(stored.kid, stored.private_key_pem)
            await store.replace_signing_key(session, stored.kid, signer.sealed(secret))
            return signer
        unsealed = await asyncio.to_thread(Signer.unseal, stored.kid, stored.private_key_pem,
                                           secret)
        if unsealed is not None:
            return unsealed
    if keys:
        logger.warning("no stored signing key opens with this service secret (it changed): "
                       "a new key signs from now on, and tokens signed before are refused")
    kid, pem = await asyncio.to_thread(Signer.new_key)
    signer = Signer(kid, pem)
    await store.add_signing_key(session, kid, await asyncio.to_thread(signer.sealed, secret))
    return signer


async def register(session: AsyncSession, registration: Registration, *, role: str = ROLE_CUSTOMER
                   ) -> UserOut:
    user = User(id=uuid.uuid4(), email=registration.email.lower(),
                name=registration.name.strip(), role=role,
                password_hash=await hash_password(registration.password.get_secret_value()))
    if not await store.add_user(session, user):
        raise Problem(409, "email-taken",
                      _("An account with {email} exists already: log in instead.").format(
                          email=user.email), field="email")
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


class LoginThrottle:
    """How failed logins are throttled (identity's settings `login_*`): after
    `account_failures` failures in a row for one account, or `address_failures` from one
    client address, logins there are locked for `lock_seconds`, doubled with each further
    failure up to `max_lock_seconds`. A failure older than `memory_seconds` starts the
    count again. The counts are in PostgreSQL, shared by every identity instance; each
    lock is counted on `meter`'s `kansoku.identity.login.locks`."""

    def __init__(self, *, account_failures: int = 5, address_failures: int = 20,
                 lock_seconds: float = 30.0, max_lock_seconds: float = 900.0,
                 memory_seconds: float = 900.0, meter: Meter | None = None) -> None:
        self.account_failures = account_failures
        self.address_failures = address_failures
        self.lock_seconds = lock_seconds
        self.max_lock_seconds = max_lock_seconds
        self.memory_seconds = memory_seconds
        self.locks = (meter or _meter).create_counter(
            semconv.METRIC_LOGIN_LOCKS, unit="{lock}",
            description="Logins locked after failures in a row, by kind (account or address)")

    def lock_for(self, failures: int, threshold: int) -> float | None:
        """Seconds to lock after `failures` in a row (None: not yet)."""
        if failures < threshold:
            return None
        return float(min(self.lock_seconds * 2 ** min(failures - threshold, 32),
                         self.max_lock_seconds))


def _throttle_keys(email: str, address: str) -> dict[str, str]:
    """The throttle's keys for a login: the account's (a hash of the address as given,
    whether or not it has an account, so an unknown address is throttled exactly like a
    known one) and the client address's."""
    account = hashlib.sha256(email.lower().encode()).hexdigest()
    return {"account": f"account:{account}", "address": f"address:{address}"[:100]}


def _locked(until: datetime, now: datetime) -> Problem:
    seconds = max(1, math.ceil((until - now).total_seconds()))
    return Problem(429, "login-locked",
                   _("Too many failed logins: try again in {seconds} s.").format(
                       seconds=seconds), headers={"Retry-After": str(seconds)})


async def _count_failure(session: AsyncSession, keys: dict[str, str], user: User | None,
                         address: str, throttle: LoginThrottle, now: datetime) -> None:
    """A failed login (or a wrong current password): counted for the account and the
    address; a count that reaches its threshold locks logins there."""
    forget_before = now - timedelta(seconds=throttle.memory_seconds)
    for kind, key in keys.items():
        failures = await store.count_login_failure(session, key, now, forget_before)
        threshold = (throttle.account_failures if kind == "account"
                     else throttle.address_failures)
        seconds = throttle.lock_for(failures, threshold)
        if seconds is None:
            continue
        await store.lock_logins(session, key, now + timedelta(seconds=seconds))
        throttle.locks.add(1, {"kind": kind})
        # Who: the user id (never the e-mail address, nor anything typed), or the address.
        who = (f"account {user.id}" if user else "an unknown account") if kind == "account" \
            else f"address {address}"
        logger.warning("logins locked for %g s: %d failures in a row for %s", seconds,
                       failures, who, extra={"lock_kind": kind, "failures": failures})


async def login(session: AsyncSession, credentials: Credentials, signer: Signer, *,
                access_seconds: int, refresh_days: int, address: str,
                throttle: LoginThrottle, clock: UtcClock = utc_now) -> Tokens:
    """Tokens for right credentials. Wrong ones count towards a lock of the account and
    of `address` (the client's); a locked login is a 429 with Retry-After, whatever the
    password, and costs no password hash."""
    now = clock()
    email = credentials.email.lower()
    keys = _throttle_keys(email, address)
    locked_until = await store.login_locked_until(session, list(keys.values()), now)
    if locked_until is not None:
        _logins.add(1, {"outcome": "locked"})
        raise _locked(locked_until, now)
    user = await store.get_user_by_email(session, email)
    password = credentials.password.get_secret_value()
    valid = await password_matches(user.password_hash if user else _DUMMY_HASH, password)
    if user is None or not valid:
        _logins.add(1, {"outcome": "rejected"})
        await _count_failure(session, keys, user, address, throttle, now)
        # One answer for both cases: which addresses have accounts is nobody's business.
        # The failure's count is kept (committed) though the answer is an error.
        raise Problem(401, "bad-credentials", _("The e-mail address or password is wrong."),
                      keep_changes=True)
    _logins.add(1, {"outcome": "accepted"})
    await store.forget_login_failures(session, keys["account"])
    return await _issue_tokens(session, user, signer, access_seconds, refresh_days)


async def refresh(session: AsyncSession, refresh_token: str, signer: Signer, *,
                  access_seconds: int, refresh_days: int) -> Tokens:
    """New tokens for a refresh token, which is used up (rotation)."""
    used = await store.take_refresh_token(session, _token_hash(refresh_token), utc_now())
    user = await store.get_user(session, used.user_id) if used else None
    if user is None:
        raise Problem(401, "bad-refresh-token",
                      _("The refresh token is unknown, expired or already used: log in "
                        "again."))
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
    if ask.service not in SERVICES_BY_NAME:
        # Services admit each other by name (`kit.auth.allow`): a token for a name that
        # is no service of the shop would be a name nobody checks for.
        raise Problem(422, "unknown-service",
                      f"'{ask.service}' is not one of the shop's services "
                      f"({', '.join(sorted(SERVICES_BY_NAME))}).", field="service")
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
        raise Problem(404, "user-not-found", _("This account no longer exists."))
    return user


async def profile(session: AsyncSession, principal: Principal) -> UserOut:
    return UserOut.model_validate(await _account(session, principal))


async def change_profile(session: AsyncSession, principal: Principal, change: ProfileChange,
                         *, address: str, throttle: LoginThrottle,
                         clock: UtcClock = utc_now) -> UserOut:
    """Change the caller's name, e-mail address or password. The last two need the
    current password, checked (and throttled) as a login is: an access token alone —
    stolen, or left in a browser — must not be enough to take the account over."""
    user = await _account(session, principal)
    if change.email is not None or change.password is not None:
        await _check_current_password(session, user, change, address, throttle, clock())
    if change.name is not None:
        user.name = change.name.strip()
    if change.email is not None and change.email.lower() != user.email:
        email = change.email.lower()
        if await store.get_user_by_email(session, email) is not None:
            raise Problem(409, "email-taken",
                          _("Another account has this e-mail address already."),
                          field="email")
        user.email = email
    if change.password is not None:
        user.password_hash = await hash_password(change.password.get_secret_value())
        # A new password logs out every other session.
        await store.revoke_refresh_tokens(session, user.id, utc_now())
    await session.flush()
    await session.refresh(user)
    return UserOut.model_validate(user)


async def _check_current_password(session: AsyncSession, user: User, change: ProfileChange,
                                  address: str, throttle: LoginThrottle, now: datetime
                                  ) -> None:
    if change.current_password is None:
        raise Problem(422, "current-password-required",
                      _("Changing the e-mail address or password needs your current "
                        "password: send it as `current_password`."), field="current_password")
    keys = _throttle_keys(user.email, address)
    locked_until = await store.login_locked_until(session, list(keys.values()), now)
    if locked_until is not None:
        raise _locked(locked_until, now)
    if not await password_matches(user.password_hash, change.current_password.get_secret_value()):
        await _count_failure(session, keys, user, address, throttle, now)
        # 403, not 401: the access token is fine (a 401 would log a web session out).
        raise Problem(403, "current-password-wrong", _("The current password is wrong."),
                      field="current_password", keep_changes=True)
