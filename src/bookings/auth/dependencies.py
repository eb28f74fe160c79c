"""The auth service as a dependency, the caller dependencies (``Caller``, ``AdminCaller``, from
``bookings.identity``), and ``document_bearer_auth``, which puts the bearer scheme in the OpenAPI document that
``HTTPBearer`` would have put there (``current_principal`` has no sub-dependencies: resolving one costs FastAPI
more than verifying a cached token does).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from bookings.auth.service import AuthService
from bookings.identity import AdminCaller, Caller, current_principal

SCHEME = "HTTPBearer"
BEARER_SCHEME = {"type": "http", "scheme": "bearer", "description": "An access token from `POST /v1/auth/login`."}


async def auth_service(request: Request) -> AuthService:
    service: AuthService = request.app.state.auth
    return service


Auth = Annotated[AuthService, Depends(auth_service)]


__all__ = ["AdminCaller", "Auth", "Caller", "current_principal", "document_bearer_auth"]


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
