"""What the identity service accepts and returns."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, EmailStr, Field, SecretStr

from kansoku.kit.fields import Text, UtcDateTime


class Registration(BaseModel):
    name: Text = Field(min_length=1, max_length=200)
    email: EmailStr
    password: SecretStr = Field(min_length=8, max_length=200)


class Credentials(BaseModel):
    email: EmailStr
    password: SecretStr = Field(min_length=1, max_length=200)


class RefreshRequest(BaseModel):
    refresh_token: SecretStr = Field(min_length=1, max_length=200)


class ProfileChange(BaseModel):
    """What to change. A new password or e-mail address needs the current password:
    a stolen access token alone must not become the account."""

    name: Text | None = Field(None, min_length=1, max_length=200)
    email: EmailStr | None = None
    password: SecretStr | None = Field(None, min_length=8, max_length=200)
    current_password: SecretStr | None = Field(None, min_length=1, max_length=200)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    email: str
    role: str
    created_at: UtcDateTime


class Tokens(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    #: Seconds until the access token expires.
    expires_in: int
    refresh_token: str


class ServiceTokenRequest(BaseModel):
    """A service asking for a token of its own (OAuth's client-credentials grant)."""

    service: str = Field(pattern=r"^[a-z][a-z0-9-]{1,31}$", description="Who is asking")
    secret: SecretStr = Field(min_length=1, max_length=200)


class ServiceToken(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in: int
