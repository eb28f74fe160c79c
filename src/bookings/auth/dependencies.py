"""The caller of a request, as typed dependencies: ``Caller`` (anyone signed in) and ``AdminCaller``.

Dependencies here (and everywhere in the service) are ``async def`` although they never await: FastAPI runs a
plain ``def`` dependency in a worker thread, a hop that costs more than the dependency itself. For the same
reason ``current_principal`` has no sub-dependencies: resolving one costs FastAPI more than verifying a cached
token does, so it reads the header and the service itself, and ``document_bearer_auth`` puts the scheme in the
OpenAPI document that ``HTTPBearer`` would have put there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param

from bookings.auth.principal import Principal
from bookings.auth.service import AuthService
from bookings.errors import NotAuthenticated, NotPermitted
from bookings.users.models import Role

SCHEME = "HTTPBearer"
BEARER_SCHEME = {"type": "http", "scheme": "bearer", "description": "An access token from `POST /v1/auth/login`."}


async def auth_service(request: Request) -> AuthService:
    service: AuthService = request.app.state.auth
    return service


Auth = Annotated[AuthService, Depends(auth_service)]


async def current_principal(request: Request) -> Principal:
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if not token or scheme.lower() != "bearer":
        raise NotAuthenticated("An `Authorization: Bearer <accessToken>` header is required.")
    auth: AuthService = request.app.state.auth
    claims = auth.authenticate(token)
    request.state.user_id = str(claims.user_id)
    return Principal(user_id=claims.user_id, role=claims.role)


async def admin_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if principal.role is not Role.ADMIN:
        raise NotPermitted("Only admins may do this.")
    return principal


Caller = Annotated[Principal, Depends(current_principal)]
AdminCaller = Annotated[Principal, Depends(admin_principal)]


def _needs_caller(dependant: Dependant) -> bool:
    return dependant.call is current_principal or any(_needs_caller(d) for d in dependant.dependencies)


def document_bearer_auth(schema: dict[str, Any], routers: Iterable[APIRouter]) -> None:
    """Mark every operation that names its caller as needing the bearer token, and describe the scheme."""
    schema.setdefault("components", {}).setdefault("securitySchemes", {})[SCHEME] = BEARER_SCHEME
    for router in routers:
        for route in router.routes:
            if isinstance(route, APIRoute) and _needs_caller(route.dependant):
                for method in route.methods or ():
                    schema["paths"][route.path_format][method.lower()]["security"] = [{SCHEME: []}]
