"""Auth shapes at the edge."""

from __future__ import annotations

from typing import Literal

from pydantic import EmailStr, Field

from bookings.kit.schemas import ApiInput, ApiModel


class RegisterIn(ApiInput):
    email: EmailStr = Field(max_length=254, examples=["ada@example.com"])
    password: str = Field(max_length=1024, examples=["Correct-Horse-9"])
    name: str = Field(min_length=1, max_length=100, examples=["Ada Lovelace"])
    role: Literal["user", "provider"] = "user"


class LoginIn(ApiInput):
    email: str = Field(max_length=254, examples=["ada@example.com"])
    password: str = Field(max_length=1024, examples=["Correct-Horse-9"])


class RefreshIn(ApiInput):
    refresh_token: str = Field(min_length=1, max_length=512)


class TokenPair(ApiModel):
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")
