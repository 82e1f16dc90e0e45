"""Every SQL statement of the identity service. Functions take the request's session."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.services.identity.models import RefreshToken, SigningKey, User


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


async def add_signing_key(session: AsyncSession, kid: str, private_key_pem: str) -> None:
    session.add(SigningKey(kid=kid, private_key_pem=private_key_pem))
    await session.flush()
