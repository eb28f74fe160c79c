"""``/v1/auth``: register, login, refresh, logout."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from bookings.auth.dependencies import Auth
from bookings.auth.schemas import LoginIn, RefreshIn, RegisterIn, TokenPair
from bookings.db import ReadSession, WriteSession
from bookings.errors import (
    EmailTaken,
    FieldError,
    InvalidInput,
    NotAuthenticated,
    problem_responses,
    rate_limited_responses,
)
from bookings.ops.rate_limits import LOGIN, LOGIN_ADDRESS, REGISTER, Limits, client_address
from bookings.users.schemas import UserOut

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    operation_id="register",
    summary="Create an account (user or provider)",
    description="Limited per client address (`BOOKINGS_RATE_LIMIT_REGISTER`, default 20 an hour).",
    responses=rate_limited_responses(
        201,
        400,
        409,
        413,
        422,
        503,
        examples=[
            EmailTaken("An account with this email already exists."),
            InvalidInput(
                "The password does not meet the policy; see `errors`.",
                errors=[
                    FieldError(field="password", message="must contain a digit", type="password_missing_digit"),
                    FieldError(
                        field="password",
                        message="must contain a special character (not a letter, digit or space)",
                        type="password_missing_special",
                    ),
                ],
            ),
        ],
    ),
)
async def register(
    body: RegisterIn, request: Request, response: Response, limits: Limits, session: WriteSession, auth: Auth
) -> UserOut:
    await limits.hit(REGISTER, client_address(request), request, response)
    return UserOut.model_validate(await auth.register(session, body))


@router.post(
    "/login",
    operation_id="login",
    summary="Exchange email and password for tokens",
    description=(
        "Limited per client address and email (`BOOKINGS_RATE_LIMIT_LOGIN`, default 10 a minute) and per client"
        " address (`BOOKINGS_RATE_LIMIT_LOGIN_PER_ADDRESS`, default 100 a minute)."
    ),
    responses=rate_limited_responses(
        200, 400, 401, 413, 422, 503, examples=[NotAuthenticated("The email or password is wrong.")]
    ),
)
async def login(
    body: LoginIn,
    request: Request,
    response: Response,
    limits: Limits,
    reads: ReadSession,
    writes: WriteSession,
    auth: Auth,
) -> TokenPair:
    address = client_address(request)
    await limits.hit(LOGIN_ADDRESS, address, request, response)
    await limits.hit(LOGIN, f"{address} {body.email}", request, response)
    return await auth.login(reads, writes, body)


@router.post(
    "/refresh",
    operation_id="refreshTokens",
    summary="Exchange a refresh token for a new pair (each works once)",
    responses=problem_responses(
        400, 401, 413, 422, 503, examples=[NotAuthenticated("The refresh token is invalid, expired or already used.")]
    ),
)
async def refresh(body: RefreshIn, session: WriteSession, auth: Auth) -> TokenPair:
    return await auth.refresh(session, body.refresh_token)


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="logout",
    summary="Revoke a refresh token and every token rotated from it",
    responses=problem_responses(400, 413, 422, 503),
)
async def logout(body: RefreshIn, session: WriteSession, auth: Auth) -> Response:
    await auth.logout(session, body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
