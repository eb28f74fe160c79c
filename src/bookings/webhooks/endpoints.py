"""``/v1/webhooks`` (admins only)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status

from bookings.db import ReadSession, WriteSession
from bookings.errors import InvalidInput, problem_responses
from bookings.identity import AdminCaller
from bookings.kit.pagination import CURSOR_EXAMPLE, LINK, Page, Paging, link_next
from bookings.webhooks.schemas import WebhookIn, WebhookOut, WebhookWithSecret
from bookings.webhooks.service import WebhookNotFound, Webhooks

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
NOT_FOUND = WebhookNotFound("No webhook with this id.")
WebhookId = Annotated[uuid.UUID, Path(alias="webhookId", description="The webhook's id.")]


async def _webhooks(request: Request) -> Webhooks:
    webhooks: Webhooks = request.app.state.webhooks
    return webhooks


WebhooksDep = Annotated[Webhooks, Depends(_webhooks)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    operation_id="createWebhook",
    summary="Register an endpoint for events (its secret is shown only in this response)",
    responses=problem_responses(
        400,
        401,
        403,
        413,
        422,
        503,
        examples=[
            InvalidInput.on(
                "url", "The URL points to a private, loopback or link-local address.", "webhook_url_not_public"
            )
        ],
    ),
)
async def create(
    body: WebhookIn, _caller: AdminCaller, session: WriteSession, webhooks: WebhooksDep
) -> WebhookWithSecret:
    return await webhooks.create(session, body)


@router.get(
    "",
    operation_id="listWebhooks",
    summary="Registered endpoints, oldest first",
    responses={200: {"headers": LINK}, **problem_responses(400, 401, 403, 422, 503, examples=[CURSOR_EXAMPLE])},
)
async def list_webhooks(
    _caller: AdminCaller, session: ReadSession, webhooks: WebhooksDep, paging: Paging, response: Response
) -> Page[WebhookOut]:
    page = await webhooks.registered(session, paging)
    link_next(response, paging, page)
    return page


@router.delete(
    "/{webhookId}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="deleteWebhook",
    summary="Stop sending events to an endpoint",
    responses=problem_responses(401, 403, 404, 422, 503, examples=[NOT_FOUND]),
)
async def delete(webhook_id: WebhookId, _caller: AdminCaller, session: WriteSession, webhooks: WebhooksDep) -> Response:
    await webhooks.delete(session, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{webhookId}/rotate-secret",
    operation_id="rotateWebhookSecret",
    summary="Replace the signing secret (the old one keeps signing for 24 hours)",
    responses=problem_responses(401, 403, 404, 422, 503, examples=[NOT_FOUND]),
)
async def rotate_secret(
    webhook_id: WebhookId, _caller: AdminCaller, session: WriteSession, webhooks: WebhooksDep
) -> WebhookWithSecret:
    return await webhooks.rotate_secret(session, webhook_id)
