"""``/v1/mail/unsubscribe``: the link at the foot of every message, and its one-click form (RFC 8058).

``GET`` shows a page with a button and changes nothing (mail scanners follow links); ``POST`` (the button, or a
mail client's one-click ``List-Unsubscribe=One-Click``) turns the account's mail off.
"""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import update

from bookings.db import WriteSession
from bookings.errors import NotFound, problem_responses
from bookings.mail.service import UNSUBSCRIBE_PATH
from bookings.mail.unsubscribe import UnsubscribeTokens
from bookings.users.models import User

router = APIRouter(tags=["mail"])

Token = Annotated[str, Query(max_length=200, description="The token of the link in the message.")]
PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 32rem; margin: 3rem auto">{body}</body></html>
"""


class UnknownUnsubscribeLink(NotFound):
    title, slug = "Unsubscribe link not recognised", "unsubscribe-link-unknown"


def _tokens(request: Request) -> UnsubscribeTokens:
    tokens: UnsubscribeTokens = request.app.state.unsubscribe_tokens
    return tokens


NOT_OURS = UnknownUnsubscribeLink("This link is not one this service sent, or its account is gone.")
HTML_PAGE = {
    "content": {"text/html": {"schema": {"type": "string"}, "example": "<!DOCTYPE html><html>...</html>"}},
    "description": "A page for a person.",
}


@router.get(
    UNSUBSCRIBE_PATH,
    operation_id="showUnsubscribe",
    summary="A page that asks to confirm turning mail off",
    response_class=HTMLResponse,
    responses={200: HTML_PAGE, **problem_responses(404, 422, examples=[NOT_OURS])},
)
async def confirm(request: Request, token: Token) -> HTMLResponse:
    if _tokens(request).user_of(token) is None:
        raise NOT_OURS
    action = html.escape(f"{UNSUBSCRIBE_PATH}?token={token}", quote=True)
    body = (
        "<h1>Stop mail about bookings?</h1><p>You will get no more confirmations, changes or reminders by mail. "
        "You can turn them back on in your account.</p>"
        f'<form method="post" action="{action}"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Stop mail</button></form>'
    )
    return HTMLResponse(PAGE.format(title="Stop mail about bookings?", body=body))


@router.post(
    UNSUBSCRIBE_PATH,
    operation_id="unsubscribe",
    summary="Turn the account's mail off (one click: the body is `List-Unsubscribe=One-Click`, and is not read)",
    response_class=HTMLResponse,
    responses={200: HTML_PAGE, **problem_responses(404, 413, 422, 503, examples=[NOT_OURS])},
)
async def unsubscribe(request: Request, token: Token, session: WriteSession) -> HTMLResponse:
    user_id = _tokens(request).user_of(token)
    if user_id is None:
        raise NOT_OURS
    result = await session.execute(update(User).where(User.id == user_id).values(email_notifications=False))
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NOT_OURS
    body = "<h1>Done</h1><p>No more mail about bookings will be sent to you.</p>"
    return HTMLResponse(PAGE.format(title="Mail stopped", body=body))
