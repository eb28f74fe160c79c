"""Auth shapes at the edge."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, EmailStr, Field, field_validator
from typing_extensions import TypeAliasType  # in typing from 3.12; pydantic requires typing_extensions

from bookings.kit.schemas import ApiInput, ApiModel

# A named alias, so the document has one `RegistrationRole` component (generated clients get a type of that
# name, not `RegisterInRole` beside `Role`); it validates as the `Literal` it is (`literal_error` for `admin`).
RegistrationRole = TypeAliasType("RegistrationRole", Literal["user", "provider"])


class RegisterIn(ApiInput):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"email": "ada@example.com", "password": "Correct-Horse-9", "name": "Ada Lovelace", "role": "user"},
                {
                    "email": "clinic@example.com",
                    "password": "Battery-Staple-7",
                    "name": "Dr. Byron",
                    "role": "provider",
                },
            ]
        }
    )

    email: EmailStr = Field(max_length=254, examples=["ada@example.com"])
    password: str = Field(max_length=1024, examples=["Correct-Horse-9"])
    name: str = Field(min_length=1, max_length=100, examples=["Ada Lovelace"])
    role: RegistrationRole = Field(default="user", description="Admins are made only by `bookings create-admin`.")


class LoginIn(ApiInput):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"email": "ada@example.com", "password": "Correct-Horse-9"}]}
    )

    email: str = Field(max_length=254, examples=["ada@example.com"])
    password: str = Field(max_length=1024, examples=["Correct-Horse-9"])

    @field_validator("email", mode="after")
    @classmethod
    def _normalize(cls, value: str) -> str:
        """The one form an email is looked up, and rate-limited, by (``str.strip`` also drops what pydantic's
        whitespace stripping keeps, such as U+001C-U+001F)."""
        return value.strip().lower()


class RefreshIn(ApiInput):
    model_config = ConfigDict(json_schema_extra={"examples": [{"refreshToken": "Nq3v0ZxTj8m2RkB9cW4yLh7pQe1sUa6d"}]})

    refresh_token: str = Field(min_length=1, max_length=512)


class TokenPair(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "accessToken": "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiI3YzllIn0.c2lnbmF0dXJl",
                    "refreshToken": "Nq3v0ZxTj8m2RkB9cW4yLh7pQe1sUa6d",
                    "tokenType": "Bearer",
                    "expiresIn": 900,
                }
            ]
        }
    )

    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")
