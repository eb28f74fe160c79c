"""Who is calling: the roles, the principal, and the ``Caller``/``AdminCaller`` dependencies.

Below every domain, so that any domain's routes can name their caller: the dependencies verify the bearer token
through the ``Authenticator`` the app holds (``auth.service.AuthService``) without importing it, which keeps the
``auth`` package (it registers and signs in ``users``) above the ``users`` package (whose routes need a caller).

Dependencies here (and everywhere in the service) are ``async def`` although they never await: FastAPI runs a
plain ``def`` dependency in a worker thread, a hop that costs more than the dependency itself. For the same
reason ``current_principal`` has no sub-dependencies: resolving one costs FastAPI more than verifying a cached
token does, so it reads the header and the service itself.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import Annotated, Protocol

from fastapi import Depends, Request
from fastapi.security.utils import get_authorization_scheme_param

from bookings.errors import NotAuthenticated, NotPermitted


class Role(enum.StrEnum):
    USER = "user"
    PROVIDER = "provider"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of a request."""

    user_id: uuid.UUID
    role: Role


class Claims(Protocol):
    @property
    def user_id(self) -> uuid.UUID: ...

    @property
    def role(self) -> Role: ...


class Authenticator(Protocol):
    def authenticate(self, token: str) -> Claims: ...


async def current_principal(request: Request) -> Principal:
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if not token or scheme.lower() != "bearer":
        raise NotAuthenticated("An `Authorization: Bearer <accessToken>` header is required.")
    auth: Authenticator = request.app.state.auth
    claims = auth.authenticate(token)
    request.state.user_id = str(claims.user_id)
    return Principal(user_id=claims.user_id, role=claims.role)


async def admin_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if principal.role is not Role.ADMIN:
        raise NotPermitted("Only admins may do this.")
    return principal


Caller = Annotated[Principal, Depends(current_principal)]
AdminCaller = Annotated[Principal, Depends(admin_principal)]
