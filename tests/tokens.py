"""Access tokens for tests, signed by a key the test owns, and a verifier for them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from kansoku.kit.auth import AUDIENCE, ISSUER, TokenVerifier
from kansoku.services.identity.service import Signer


class TokenIssuer:
    """Issue tokens like identity does; `verifier` checks them like every service does."""

    def __init__(self) -> None:
        self.signer = Signer(*Signer.new_key())
        self.verifier = TokenVerifier(jwks=self.signer.jwks())

    #: Longer than a whole test run: modules make their headers once, when collected,
    #: and on a busy machine the suite runs past identity's 15 minutes.
    LIFETIME = timedelta(hours=3)

    def token(self, role: str = "customer", user_id: str | None = None) -> str:
        now = datetime.now(UTC)
        return self.signer.sign({
            "iss": ISSUER, "aud": AUDIENCE, "sub": user_id or str(uuid.uuid4()),
            "email": "someone@example.com", "name": "Someone", "role": role,
            "iat": now, "exp": now + self.LIFETIME})

    def headers(self, role: str = "customer", user_id: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, user_id)}"}
