"""Web sessions: who is browsing, with which tokens, kept in Valkey.

The browser holds one cookie, `kansoku_session`: a random id that means nothing by
itself. It is HttpOnly (page scripts cannot read it), Secure (sent over HTTPS, and to
localhost) and SameSite=Lax (another site's form posts arrive without it). The session
lives in Valkey, under a hash of that id, with an idle timeout: the identity service's
access and refresh tokens, who the user is, the CSRF token the pages' forms carry, and
one-time notices for the next page. Tokens never reach the browser, a log line or a
span.

What Valkey holds is sealed (AES-GCM) with a key derived from the cookie's value,
which only the browser has: Valkey's keys are a hash of it, so a dump of Valkey (its
append-only file, a replica, a backup) holds no token, address or name anyone can use
— not even with the gateway's own settings.

`WebSession` is one browser's session (and the `Caller` the pages call the services
for); `SessionStore` keeps sessions in Valkey and refreshes their tokens; the
`SessionCookies` middleware saves a changed session and sets the cookie before a
response starts. Loading a request's session, logging in and out, and the pages'
access rules are in `web/auth.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import redis.asyncio as redis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kansoku.contracts.calls import Refused
from kansoku.contracts.clients import IdentityClient
from kansoku.kit.auth import ROLE_ADMIN, TokenVerifier
from kansoku.kit.clock import WallClock, wall_time
from kansoku.kit.errors import DependencyUnavailable

logger = logging.getLogger(__name__)

#: The one cookie the pages set.
COOKIE_NAME: Final = "kansoku_session"
#: A session unused this long is forgotten (each request starts the count again).
SESSION_IDLE_SECONDS: Final = 7 * 24 * 3600
#: Refresh the access token this long before it expires, so no call leaves with a token
#: that expires on the way.
REFRESH_MARGIN_SECONDS: Final = 30
#: How long one request may hold a session's refresh (refresh tokens work only once).
REFRESH_LOCK_SECONDS: Final = 10
_KEY_PREFIX: Final = "websession:"
#: What a session id looks like (secrets.token_urlsafe(32)); anything else is ignored.
_SESSION_ID: Final = re.compile(r"^[A-Za-z0-9_-]{43}$")


class LoginRequired(Exception):
    """Send the browser to a login page (a 303), which returns it to `next` after."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


@dataclass(eq=False)
class WebSession:
    """One browser's session. Anonymous until logged in; `auth_headers()` is what calls
    to the other services send for the logged-in user."""

    #: The cookie's value. repr=False here and below: never in a log line or a repr.
    id: str = field(repr=False)
    csrf_token: str = field(repr=False)
    user_id: str | None = None
    email: str | None = None
    name: str | None = None
    role: str | None = None
    access_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    #: When the access token expires (seconds since the epoch).
    access_expires_at: float = 0.0
    #: One-time notices for the next page ("Added 2 to your cart").
    messages: list[str] = field(default_factory=list)
    # Bookkeeping, not stored: is it in Valkey, must it be saved before the response
    # starts, and was it ended (logged out) in this request?
    stored: bool = field(default=False, repr=False)
    changed: bool = field(default=False, repr=False)
    ended: bool = field(default=False, repr=False)

    @classmethod
    def new(cls) -> WebSession:
        """A new anonymous session with fresh random ids."""
        return cls(id=secrets.token_urlsafe(32), csrf_token=secrets.token_urlsafe(32))

    @property
    def logged_in(self) -> bool:
        return self.user_id is not None and self.access_token is not None

    @property
    def is_admin(self) -> bool:
        return self.logged_in and self.role == ROLE_ADMIN

    # The `Caller` the pages call the services for (clients.py).

    async def auth_headers(self) -> dict[str, str]:
        """`Authorization: Bearer …` for calls made for this user; empty when anonymous."""
        if not self.logged_in:
            return {}
        return {"Authorization": f"Bearer {self.access_token}"}

    def token_rejected(self) -> None:
        """The services no longer accept this session's token (the account is gone, the
        keys changed): log out, and log in again."""
        if self.logged_in:
            self.forget_user()
            raise LoginRequired("/login")

    # Notices and who is logged in.

    def keep(self) -> None:
        """Store this session (and give the browser its cookie) when the response starts."""
        if not self.stored:
            self.changed = True

    def add_message(self, text: str) -> None:
        """Show `text` once, on the next page rendered for this session."""
        self.messages.append(text)
        self.changed = True

    def take_messages(self) -> list[str]:
        taken, self.messages = self.messages, []
        if taken:
            self.changed = True
        return taken

    def forget_user(self) -> None:
        """Become anonymous (logged out, or the tokens no longer work)."""
        self.user_id = self.email = self.name = self.role = None
        self.access_token = self.refresh_token = None
        self.access_expires_at = 0.0
        self.changed = True

    def take_tokens(self, tokens: Mapping[str, Any], *, now: float, user_id: str,
                    email: str, name: str, role: str) -> None:
        """Log in as this user with identity's `tokens`, received at `now`."""
        self.access_token = str(tokens["access_token"])
        self.refresh_token = str(tokens["refresh_token"])
        self.access_expires_at = now + float(tokens.get("expires_in", 900))
        self.user_id, self.email, self.name, self.role = user_id, email, name, role
        self.changed = True

    def adopt_tokens(self, fresher: WebSession) -> None:
        """Take the user and tokens another request of this session stored since."""
        self.access_token, self.refresh_token = fresher.access_token, fresher.refresh_token
        self.access_expires_at = fresher.access_expires_at
        self.user_id, self.email = fresher.user_id, fresher.email
        self.name, self.role = fresher.name, fresher.role

    def needs_refresh(self, now: float) -> bool:
        return (self.logged_in and self.refresh_token is not None
                and now >= self.access_expires_at - REFRESH_MARGIN_SECONDS)

    def dump(self) -> str:
        return json.dumps({
            "csrf_token": self.csrf_token, "user_id": self.user_id, "email": self.email,
            "name": self.name, "role": self.role, "access_token": self.access_token,
            "refresh_token": self.refresh_token, "access_expires_at": self.access_expires_at,
            "messages": self.messages})

    @classmethod
    def load(cls, session_id: str, raw: str | bytes) -> WebSession:
        data = json.loads(raw)
        return cls(id=session_id, csrf_token=data["csrf_token"], user_id=data["user_id"],
                   email=data["email"], name=data["name"], role=data["role"],
                   access_token=data["access_token"], refresh_token=data["refresh_token"],
                   access_expires_at=float(data["access_expires_at"]),
                   messages=list(data.get("messages", [])), stored=True)


def is_session_id(value: str | None) -> bool:
    """Whether a cookie's value can be a session id at all (else it is not looked up)."""
    return value is not None and _SESSION_ID.match(value) is not None


def _key(session_id: str) -> str:
    """Valkey's key for a session: a hash of the id, so whoever can list Valkey's keys
    still cannot use them as cookies."""
    return _KEY_PREFIX + hashlib.sha256(session_id.encode()).hexdigest()


#: HKDF's `info` for the key a session is sealed with: the cookie's value has 256
#: random bits, so a key derivation (no password stretching) is all it needs.
_SEALING_PURPOSE: Final = b"kansoku web session"
_NONCE_BYTES: Final = 12


def _sealing_key(session_id: str) -> AESGCM:
    return AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                       info=_SEALING_PURPOSE).derive(session_id.encode()))


def seal(session_id: str, plaintext: str) -> bytes:
    """`plaintext` encrypted and authenticated under the session's own key, bound to its
    Valkey key (a sealed session cannot be moved to another)."""
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + _sealing_key(session_id).encrypt(nonce, plaintext.encode(),
                                                    _key(session_id).encode())


def unseal(session_id: str, sealed: bytes | str | None) -> str | None:
    """What `seal` sealed; None for anything else (nothing, a session stored before
    sessions were sealed, or tampered with), which is then no session at all."""
    if not isinstance(sealed, bytes):
        return None
    try:
        return _sealing_key(session_id).decrypt(
            sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], _key(session_id).encode()
        ).decode()
    except (InvalidTag, ValueError):
        return None


class SessionStore:
    """Sessions in Valkey, shared by every gateway instance. `clock` is the wall clock
    (seconds since the epoch) that access tokens expire by."""

    def __init__(self, valkey: redis.Redis, *, clock: WallClock = wall_time) -> None:
        self.valkey = valkey
        self.clock = clock

    async def fetch(self, session_id: str) -> WebSession | None:
        """The stored session, its idle timeout started again; None if there is none."""
        # GETEX reads and restarts the idle timeout in one round trip.
        raw = await self.valkey.getex(_key(session_id), ex=SESSION_IDLE_SECONDS)
        opened = unseal(session_id, raw)
        return WebSession.load(session_id, opened) if opened is not None else None

    async def save(self, session: WebSession) -> None:
        await self.valkey.set(_key(session.id), seal(session.id, session.dump()),
                              ex=SESSION_IDLE_SECONDS)
        session.stored, session.changed = True, False

    async def save_or_unavailable(self, session: WebSession) -> None:
        """Save, or `DependencyUnavailable` when Valkey is away (logging in needs it)."""
        try:
            await self.save(session)
        except redis.RedisError as exc:
            raise DependencyUnavailable("valkey", f"sessions cannot be saved: {exc}") from exc

    async def delete_quietly(self, session: WebSession) -> None:
        """Forget a session that ended; if Valkey is away, it expires by itself."""
        try:
            await self.valkey.delete(_key(session.id))
        except redis.RedisError as exc:
            logger.warning("an ended web session stays in Valkey until it expires: %s", exc)
        session.stored = False

    async def save_unless_overtaken(self, session: WebSession) -> bool:
        """Save a session changed in this request (a notice added or shown, a lazy CSRF
        token), minding the browser's other requests meanwhile: one that logged out is
        not undone, and tokens one refreshed are kept (each refresh token works once) —
        unless this request forgot the user (their token was refused): that stands.
        False when the session was ended meanwhile."""
        if session.stored:
            current = await self.fetch(session.id)
            if current is None:
                session.stored = False
                return False
            if session.logged_in and current.access_expires_at > session.access_expires_at:
                session.adopt_tokens(current)
        await self.save(session)
        return True

    async def log_in(self, session: WebSession, tokens: Mapping[str, Any],
                     verifier: TokenVerifier) -> None:
        """Log `session` in with identity's `tokens` (checked by `verifier`) and store it."""
        user = await verifier.verify(str(tokens["access_token"]))
        session.take_tokens(tokens, now=self.clock(), user_id=user.user_id,
                            email=user.email, name=user.name, role=user.role)
        await self.save_or_unavailable(session)

    async def refresh(self, session: WebSession, identity: IdentityClient,
                      verifier: TokenVerifier) -> None:
        """Trade the refresh token for new tokens. Refresh tokens work once, and a
        browser sends several requests at a time: one request refreshes (under a lock in
        Valkey), the others wait for its result."""
        lock = _key(session.id) + ":refreshing"
        try:
            if not await self.valkey.set(lock, "1", nx=True, ex=REFRESH_LOCK_SECONDS):
                await self._wait_for_refresh(session)
                return
            # This request read the session before taking the lock: another may have
            # refreshed it and let go meanwhile, spending the refresh token this copy
            # holds. Its tokens are the ones to use then.
            stored = await self.fetch(session.id)
        except redis.RedisError as exc:
            raise DependencyUnavailable("valkey",
                                        f"sessions cannot be refreshed: {exc}") from exc
        try:
            if stored is not None and stored.logged_in \
                    and stored.access_expires_at > session.access_expires_at:
                session.adopt_tokens(stored)
                return
            assert session.refresh_token is not None
            try:
                tokens = await identity.refresh(session.refresh_token)
            except Refused as refused:
                logger.info("a web session's refresh token was refused (%s): logged out",
                            refused.status)
                session.forget_user()
                await self.save_or_unavailable(session)
            else:
                await self.log_in(session, tokens, verifier)
        finally:
            with contextlib.suppress(redis.RedisError):  # else it expires by itself
                await self.valkey.delete(lock)

    async def _wait_for_refresh(self, session: WebSession) -> None:
        """Another request is refreshing this session's tokens: take them when they come."""
        try:
            for _ in range(REFRESH_LOCK_SECONDS * 10):
                await asyncio.sleep(0.1)
                fresh = await self.fetch(session.id)
                if fresh is None or not fresh.logged_in:
                    session.forget_user()
                    return
                if fresh.access_expires_at > session.access_expires_at:
                    session.adopt_tokens(fresh)
                    return
        except redis.RedisError as exc:
            raise DependencyUnavailable("valkey",
                                        f"sessions cannot be refreshed: {exc}") from exc
        session.forget_user()


class SessionCookies:
    """Saves a changed session and sets (or clears) the cookie before the response
    starts, whatever the response is: a page, a redirect, a problem page. The request's
    session is the one `web.auth.current_session` left in the request's state."""

    def __init__(self, app: ASGIApp, store: SessionStore) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                session = scope.get("state", {}).get("web_session")
                cookie = await self._settle(scope, session) if session is not None else None
                if cookie is not None:
                    message = {**message, "headers": [*message.get("headers", []),
                                                      (b"set-cookie", cookie.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    async def _settle(self, scope: Scope, session: WebSession) -> str | None:
        if session.ended:
            return f"{COOKIE_NAME}=; Max-Age=0; Path=/; HttpOnly; Secure; SameSite=Lax"
        saved = False
        if session.changed:
            try:
                saved = await self.store.save_unless_overtaken(session)
            except redis.RedisError as exc:
                logger.warning("a web session could not be saved, Valkey is away: %s", exc)
        if not session.stored:
            return None
        if not saved and Request(scope).cookies.get(COOKIE_NAME) == session.id:
            return None  # the browser has it; each save (a token refresh at least every
            # few minutes while in use) sends it again, with its lifetime renewed
        return (f"{COOKIE_NAME}={session.id}; Max-Age={SESSION_IDLE_SECONDS}; Path=/; "
                "HttpOnly; Secure; SameSite=Lax")
