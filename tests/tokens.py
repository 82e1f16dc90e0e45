"""Access tokens for tests, signed by a key the test owns, and a verifier for them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from kansoku.kit.auth import (
    AUDIENCE,
    ISSUER,
    ROLE_SERVICE,
    SERVICE_SUBJECT_PREFIX,
    TokenSource,
    TokenVerifier,
)
from kansoku.services.identity.service import Signer

#: Longer than a whole test run: modules make their tokens when they are imported (at
#: collection), and a full run on a loaded machine lasts well over identity's 15 minutes.
TOKEN_LIFETIME = timedelta(hours=12)


class TokenIssuer:
    """Issue tokens like identity does; `verifier` checks them like every service does."""

    def __init__(self) -> None:
        self.signer = Signer(*Signer.new_key())
        self.verifier = TokenVerifier(jwks=self.signer.jwks())

    def token(self, role: str = "customer", user_id: str | None = None) -> str:
        now = datetime.now(UTC)
        return self.signer.sign({
            "iss": ISSUER, "aud": AUDIENCE, "sub": user_id or str(uuid.uuid4()),
            "email": "someone@example.com", "name": "Someone", "role": role,
            "iat": now, "exp": now + TOKEN_LIFETIME})

    def headers(self, role: str = "customer", user_id: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, user_id)}"}

    def service_token(self, service: str) -> str:
        """A service token, as identity issues to `service` (its subject
        `service:<name>`)."""
        now = datetime.now(UTC)
        return self.signer.sign({
            "iss": ISSUER, "aud": AUDIENCE, "sub": f"{SERVICE_SUBJECT_PREFIX}{service}",
            "name": service, "role": ROLE_SERVICE, "iat": now, "exp": now + TOKEN_LIFETIME})

    def service_headers(self, service: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.service_token(service)}"}

    def service_source(self, service: str) -> TokenSource:
        """Where a service's `ServiceCredentials` get their token in a test: signed
        here, instead of asked of identity."""
        async def issue() -> tuple[str, float]:
            return self.service_token(service), TOKEN_LIFETIME.total_seconds()
        return issue
