"""Demo accounts: a customer and an admin, with the passwords in the settings."""

from __future__ import annotations

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession

from kansoku.kit.auth import ROLE_ADMIN, ROLE_CUSTOMER
from kansoku.services.identity import service, store
from kansoku.services.identity.schemas import Registration
from kansoku.services.identity.settings import Settings


async def seed(session: AsyncSession) -> int:
    """Create the demo accounts that do not exist yet. Returns how many were created."""
    settings = Settings()
    accounts = (
        ("Alice Example", settings.demo_customer_email, settings.demo_customer_password,
         ROLE_CUSTOMER),
        ("Shop Admin", settings.demo_admin_email, settings.demo_admin_password, ROLE_ADMIN),
    )
    created = 0
    for name, email, password, role in accounts:
        if await store.get_user_by_email(session, email.lower()) is None:
            await service.register(session, Registration(
                name=name, email=email, password=SecretStr(password.get_secret_value())),
                role=role)
            created += 1
    return created
