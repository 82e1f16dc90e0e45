"""Every SQL statement of the identity service. Functions take the request's session."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.services.identity.models import LoginThrottle, RefreshToken, SigningKey, User


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.get(User, user_id)


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    return (await session.scalars(select(User).where(User.email == email))).first()


async def add_user(session: AsyncSession, user: User) -> bool:
    """Insert `user`; False if the e-mail address is taken (decided by the database, so
    two registrations racing for one address cannot both win)."""
    inserted = await session.scalar(
        insert(User)
        .values(id=user.id, email=user.email, name=user.name,
                password_hash=user.password_hash, role=user.role)
        .on_conflict_do_nothing(index_elements=[User.email])
        .returning(User.id)
    )
    return inserted is not None


async def add_refresh_token(session: AsyncSession, token: RefreshToken) -> None:
    session.add(token)
    await session.flush()


async def take_refresh_token(session: AsyncSession, token_hash: str, now: datetime
                             ) -> RefreshToken | None:
    """Revoke a live refresh token and return it: each one can be used once. A token
    that is unknown, expired or already used gives None."""
    return (await session.scalars(
        update(RefreshToken)
        .where(RefreshToken.token_hash == token_hash, RefreshToken.revoked_at.is_(None),
               RefreshToken.expires_at > now)
        .values(revoked_at=now)
        .returning(RefreshToken)
    )).first()


async def revoke_refresh_tokens(session: AsyncSession, user_id: uuid.UUID, now: datetime
                                ) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def lock_signing_keys(session: AsyncSession) -> None:
    """Serialise key creation across identity instances, until the transaction ends."""
    lock_id = func.hashtext("identity.signing_keys")
    await session.execute(select(func.pg_advisory_xact_lock(lock_id)))


async def signing_keys(session: AsyncSession) -> list[SigningKey]:
    return list(await session.scalars(select(SigningKey).order_by(SigningKey.created_at)))


async def add_signing_key(session: AsyncSession, kid: str, sealed_pem: str) -> None:
    session.add(SigningKey(kid=kid, private_key_pem=sealed_pem))
    await session.flush()


async def replace_signing_key(session: AsyncSession, kid: str, sealed_pem: str) -> None:
    await session.execute(update(SigningKey).where(SigningKey.kid == kid)
                          .values(private_key_pem=sealed_pem))


async def login_locked_until(session: AsyncSession, keys: list[str], now: datetime
                             ) -> datetime | None:
    """Until when the latest lock among `keys` holds; None when none is locked at `now`."""
    return await session.scalar(
        select(func.max(LoginThrottle.locked_until))
        .where(LoginThrottle.key.in_(keys), LoginThrottle.locked_until > now))


async def count_login_failure(session: AsyncSession, key: str, now: datetime,
                              forget_before: datetime) -> int:
    """Count one more failed login for `key` and return the failures in a row, starting
    again from one when the last was before `forget_before`. One statement, so
    concurrent failures are all counted."""
    counted = await session.scalar(
        insert(LoginThrottle)
        .values(key=key, failures=1, last_failure_at=now)
        .on_conflict_do_update(index_elements=[LoginThrottle.key], set_={
            "failures": case((LoginThrottle.last_failure_at < forget_before, 1),
                             else_=LoginThrottle.failures + 1),
            "last_failure_at": now})
        .returning(LoginThrottle.failures))
    assert counted is not None
    return int(counted)


async def lock_logins(session: AsyncSession, key: str, until: datetime) -> None:
    await session.execute(update(LoginThrottle).where(LoginThrottle.key == key)
                          .values(locked_until=until))


async def forget_login_failures(session: AsyncSession, key: str) -> None:
    await session.execute(delete(LoginThrottle).where(LoginThrottle.key == key))
