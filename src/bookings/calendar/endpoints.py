"""``/v1/users/me/calendar-feed`` (issue or revoke the caller's feed URL) and the feed itself."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status

from bookings.calendar.feeds import CalendarFeeds, digest
from bookings.calendar.schemas import CalendarFeedOut
from bookings.config import Settings
from bookings.db import ReadSession, WriteSession
from bookings.errors import NotFound, problem_responses, rate_limited_responses
from bookings.identity import Caller
from bookings.kit import conditional
from bookings.ops.rate_limits import CALENDAR_FEED, Limits

router = APIRouter(tags=["calendar"])

FEED_PATH = "/v1/calendar-feeds/{secret}.ics"
CALENDAR = "text/calendar; charset=utf-8"
FEED_EXAMPLE = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Bookings//Bookings//EN\r\nCALSCALE:GREGORIAN\r\n"
    "NAME:Bookings: Ada Lovelace\r\nBEGIN:VEVENT\r\nSUMMARY:Booking with Dr. Ada Byron\r\n"
    "DTSTART:20300501T100000Z\r\nDTEND:20300501T103000Z\r\nDTSTAMP:20300420T170500Z\r\n"
    "UID:booking-5b1f0c9e-8d2a-4c3b-9e7f-1a2b3c4d5e6f@bookings\r\nSEQUENCE:1\r\nSTATUS:CONFIRMED\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n"
)
ETAG = {"ETag": {"description": "The feed's current version.", "schema": {"type": "string"}}}


class FeedNotFound(NotFound):
    title, slug = "Calendar feed not found", "calendar-feed-not-found"


async def _feeds(request: Request) -> CalendarFeeds:
    feeds: CalendarFeeds = request.app.state.calendar_feeds
    return feeds


Feeds = Annotated[CalendarFeeds, Depends(_feeds)]
Secret = Annotated[str, Path(max_length=200, description="The feed's secret, as issued.")]


def feed_url(request: Request, secret: str) -> str:
    settings: Settings = request.app.state.settings
    base = settings.public_url or str(request.base_url).rstrip("/")
    return base + FEED_PATH.format(secret=secret)


@router.post(
    "/v1/users/me/calendar-feed",
    status_code=status.HTTP_201_CREATED,
    operation_id="issueCalendarFeed",
    summary="A new URL for the caller's calendar feed (the previous one stops working)",
    responses=problem_responses(401, 503),
)
async def issue(caller: Caller, session: WriteSession, feeds: Feeds, request: Request) -> CalendarFeedOut:
    return CalendarFeedOut(url=feed_url(request, await feeds.issue(session, caller.user_id)))


@router.delete(
    "/v1/users/me/calendar-feed",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="revokeCalendarFeed",
    summary="Revoke the caller's calendar feed URL",
    responses=problem_responses(401, 503),
)
async def revoke(caller: Caller, session: WriteSession, feeds: Feeds) -> Response:
    await feeds.revoke(session, caller.user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    FEED_PATH,
    operation_id="getCalendarFeed",
    summary="The feed: the owner's bookings as iCalendar, from 30 days back on",
    description="No `Authorization`: the secret in the URL is the credential. Limited per feed "
    "(`BOOKINGS_RATE_LIMIT_CALENDAR_FEED`, default 60 a minute).",
    response_class=Response,
    responses={
        **rate_limited_responses(
            200, 404, 422, 503, headers=ETAG, examples=[FeedNotFound("No calendar feed has this URL.")]
        ),
        200: {
            "content": {"text/calendar": {"schema": {"type": "string"}, "example": FEED_EXAMPLE}},
            "description": "An iCalendar object (RFC 5545).",
            "headers": {**ETAG, **rate_limited_responses(200)[200]["headers"]},
        },
        304: {"description": "The `ETag` in `If-None-Match` is current; no body.", "headers": ETAG},
    },
)
async def feed(
    secret: Secret,
    session: ReadSession,
    feeds: Feeds,
    limits: Limits,
    request: Request,
    response: Response,
) -> Response:
    await limits.hit(CALENDAR_FEED, digest(secret), request, response)
    found = await feeds.find(session, secret)
    if found is None:
        raise FeedNotFound("No calendar feed has this URL.")
    tag = await feeds.tag(session, found)
    # The rate-limit fields the limiter set on the injected response, on the response actually sent.
    headers = {k: v for k, v in response.headers.items() if k != "content-length"}
    headers |= {"ETag": tag, "Cache-Control": "private, no-cache"}
    held = request.headers.get("if-none-match")
    if held is not None and not conditional.if_none_match(held, tag):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(await feeds.render(session, found), media_type=CALENDAR, headers=headers)
