"""The caller of a request, as typed dependencies: ``Caller`` (anyone signed in) and ``AdminCaller``.

Dependencies here (and everywhere in the service) are ``async def`` although they never await: FastAPI runs a
plain ``def`` dependency in a worker thread, a hop that costs more than the dependency itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bookings.auth.principal import Principal
from bookings.auth.service import AuthService
from bookings.errors import NotAuthenticated, NotPermitted
from bookings.users.models import Role

bearer = HTTPBearer(auto_error=False, description="An access token from `POST /v1/auth/login`.")


async def auth_service(request: Request) -> AuthService:
    service: AuthService = request.app.state.auth
    return service


Auth = Annotated[AuthService, Depends(auth_service)]


async def current_principal(
    request: Request, auth: Auth, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise NotAuthenticated("An `Authorization: Bearer <accessToken>` header is required.")
    claims = auth.authenticate(credentials.credentials)
    request.state.user_id = str(claims.user_id)
    return Principal(user_id=claims.user_id, role=claims.role)


async def admin_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if principal.role is not Role.ADMIN:
        raise NotPermitted("Only admins may do this.")
    return principal


Caller = Annotated[Principal, Depends(current_principal)]
AdminCaller = Annotated[Principal, Depends(admin_principal)]
