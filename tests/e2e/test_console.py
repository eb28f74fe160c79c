"""The web console in a real browser (Debian's Chromium, driven by Playwright) against a real ``bookings serve``.

Each test leaves a screenshot in ``test-artifacts/`` whether it passes or not.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Locator, Page, WebSocketRoute, async_playwright, expect

from tests.conftest import Service, start_service
from tests.support.api import PASSWORD, account, book, register

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# A half-hour offset and no daylight saving: the page must send the browser's own offset, minutes included.
BROWSER_ZONE = "Asia/Kolkata"
IST = timezone(timedelta(hours=5, minutes=30))
LIVE_WITHIN_MS = 5_000
# Before the page's script runs: note each WebSocket it opens, with the subprotocols it offered and the one selected.
RECORD_SOCKETS = """
window.__sockets = [];
window.WebSocket = class extends window.WebSocket {
  constructor(url, protocols) {
    super(url, protocols);
    const socket = { url: String(url), protocols: [].concat(protocols ?? []), protocol: null };
    window.__sockets.push(socket);
    this.addEventListener("open", () => (socket.protocol = this.protocol));
  }
};
"""


@pytest.fixture(scope="module")
def console_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = start_service("sqlite", tmp_path_factory.mktemp("console"))
    yield service
    service.server.stop()


@pytest.fixture
async def http(console_service: Service) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=console_service.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


class Console:
    """The page, in the words of the test: what a person does and what they see."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        page.on("console", lambda message: message.type == "error" and self.errors.append(message.text))

    async def log_in(self, base_url: str, email: str) -> None:
        await self.page.goto(f"{base_url}/console")
        await self.page.get_by_test_id("login-email").fill(email)
        await self.page.get_by_test_id("login-password").fill(PASSWORD)
        await self.page.get_by_test_id("login-submit").click()
        await expect(self.page.get_by_test_id("whoami")).to_contain_text(email)
        await expect(self.page.get_by_test_id("connection-state")).to_have_attribute("data-state", "live")

    async def book(self, provider_name: str, start: datetime, end: datetime, notes: str = "") -> None:
        await self.page.get_by_test_id("booking-provider").select_option(label=provider_name)
        await self.page.get_by_test_id("booking-start").fill(start.strftime("%Y-%m-%dT%H:%M"))
        await self.page.get_by_test_id("booking-end").fill(end.strftime("%Y-%m-%dT%H:%M"))
        await self.page.get_by_test_id("booking-notes").fill(notes)
        await self.page.get_by_test_id("booking-submit").click()

    def event(self, kind: str, booking_id: str | None = None) -> Locator:
        selector = f'[data-testid="event-entry"][data-event="{kind}"]'
        return self.page.locator(selector + (f'[data-booking-id="{booking_id}"]' if booking_id else ""))

    def row(self, booking_id: str) -> Locator:
        return self.page.locator(f'[data-testid="booking-row"][data-booking-id="{booking_id}"]')


@pytest.fixture
async def console(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Console]:
    context = await browser.new_context(
        timezone_id=BROWSER_ZONE, locale="en-GB", viewport={"width": 1280, "height": 760}
    )
    console = Console(await context.new_page())
    yield console
    ARTIFACTS.mkdir(exist_ok=True)
    name = "console" if request.node.name == "test_books_and_cancels_with_live_events" else request.node.name
    await console.page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)
    await context.close()


def ist(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=IST)


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TestConsole:
    async def test_books_and_cancels_with_live_events(
        self, console: Console, console_service: Service, http: httpx.AsyncClient
    ) -> None:
        user = await account(http, "user")
        await register(http, "provider", name="Dr. Ada Byron")
        await console.log_in(console_service.url, user.email)

        day = datetime.now(IST).date() + timedelta(days=10)
        start, end = ist(day, 9), ist(day, 9, 45)
        await console.book("Dr. Ada Byron", start, end, notes="Annual check-up")

        created = console.event("booking.created")
        await expect(created).to_have_count(1, timeout=LIVE_WITHIN_MS)
        booking_id = await created.get_attribute("data-booking-id")
        assert booking_id is not None
        await expect(console.row(booking_id)).to_contain_text("Dr. Ada Byron")
        await expect(console.row(booking_id)).to_contain_text("Annual check-up")
        stored = (await http.get(f"/v1/bookings/{booking_id}", headers=user.headers)).json()
        assert (stored["startTime"], stored["endTime"]) == (utc_text(start), utc_text(end))  # 09:00+05:30 is 03:30Z

        await console.row(booking_id).get_by_test_id("booking-cancel").click()
        await expect(console.event("booking.cancelled", booking_id)).to_have_count(1, timeout=LIVE_WITHIN_MS)
        await expect(console.row(booking_id)).to_have_attribute("data-status", "cancelled")
        assert console.errors == []

    async def test_registers_a_provider_who_can_log_out(self, console: Console, console_service: Service) -> None:
        page = console.page
        email = f"provider-{secrets.token_hex(5)}@example.com"
        await page.goto(f"{console_service.url}/console")
        await page.get_by_test_id("register-name").fill("Dr. Rosalind Franklin")
        await page.get_by_test_id("register-email").fill(email)
        await page.get_by_test_id("register-password").fill(PASSWORD)
        await page.get_by_test_id("register-role").select_option("provider")
        await page.get_by_test_id("register-submit").click()

        await expect(page.get_by_test_id("whoami")).to_contain_text(f"Dr. Rosalind Franklin <{email}> · provider")
        await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "live")
        await expect(page.get_by_test_id("booking-submit")).to_be_hidden()  # providers are booked, they do not book

        await page.get_by_test_id("logout").click()
        await expect(page.get_by_test_id("login-submit")).to_be_visible()
        await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "offline")
        assert console.errors == []

    async def test_offers_a_calendar_feed_link_and_turns_mail_off(
        self, console: Console, console_service: Service, http: httpx.AsyncClient
    ) -> None:
        user, provider = await account(http, "user"), await account(http, "provider")
        booking = (await book(http, user, provider)).json()
        await console.log_in(console_service.url, user.email)
        page = console.page

        await page.get_by_test_id("feed-issue").click()
        url_field = page.get_by_test_id("feed-url")
        await expect(url_field).to_have_value(re.compile(r"/v1/calendar-feeds/[\w-]+\.ics$"))
        first = await url_field.input_value()
        feed = await http.get(first)
        assert feed.status_code == 200
        assert f"booking-{booking['id']}@bookings" in feed.text.replace("\r\n ", "")  # unfolded
        await page.get_by_test_id("feed-issue").click()  # a new link: the old one stops working
        await expect(url_field).not_to_have_value(first)
        assert (await http.get(first)).status_code == 404
        await page.get_by_test_id("feed-revoke").click()
        await expect(page.get_by_test_id("calendar-state")).to_contain_text("off")
        await expect(url_field).to_be_hidden()

        toggle = page.get_by_test_id("mail-toggle")
        await expect(toggle).to_be_checked()
        await toggle.uncheck()
        await expect(page.get_by_test_id("calendar-state")).to_have_text("Mail is off.")
        me = await http.get("/v1/users/me", headers=user.headers)
        assert me.json()["emailNotifications"] is False
        assert console.errors == []

    async def test_shows_the_problem_when_the_service_refuses(
        self, console: Console, console_service: Service, http: httpx.AsyncClient
    ) -> None:
        user = await account(http, "user")
        await register(http, "provider", name="Dr. Grace Hopper")
        await console.log_in(console_service.url, user.email)

        yesterday = datetime.now(IST).date() - timedelta(days=1)
        await console.book("Dr. Grace Hopper", ist(yesterday, 9), ist(yesterday, 10))

        problem = console.page.get_by_test_id("problem")
        await expect(problem).to_be_visible()
        await expect(problem.locator("strong")).not_to_be_empty()
        await expect(problem.locator("li")).to_contain_text("startTime")
        await expect(console.page.get_by_test_id("booking-row")).to_have_count(0)

    async def test_the_socket_carries_the_token_in_its_subprotocol_not_its_url(
        self, console: Console, console_service: Service, http: httpx.AsyncClient
    ) -> None:
        await console.page.add_init_script(RECORD_SOCKETS)
        user = await account(http, "user")
        await console.log_in(console_service.url, user.email)
        (socket,) = await console.page.evaluate("window.__sockets")
        assert "token=" not in socket["url"]
        assert socket["url"].endswith("/ws")
        offered, bearer = socket["protocols"]
        assert offered == "bookings.v1"
        assert bearer.startswith("bearer.")
        assert bearer.removeprefix("bearer.").count(".") == 2, "a JWT: header, claims, signature"
        # Chromium holds the server to RFC 6455: the handshake succeeded, and selected bookings.v1, not the token.
        assert socket["protocol"] == "bookings.v1"
        log = console_service.server.log()
        assert bearer.removeprefix("bearer.") not in log
        assert bearer.split(".")[-1] not in log, "not even the signature"
        assert console.errors == []

    async def test_reconnects_after_a_drop_and_replays_what_it_missed(
        self, console: Console, console_service: Service, http: httpx.AsyncClient
    ) -> None:
        user = await account(http, "user")
        provider_account = await account(http, "provider")
        connections: list[WebSocketRoute] = []

        async def through(ws: WebSocketRoute) -> None:
            connections.append(ws)
            if len(connections) == 2:  # the page is away: a booking is made that it can only learn of by replay
                assert (await book(http, user, provider_account)).status_code == 201
            ws.connect_to_server()

        await console.page.route_web_socket(re.compile(r"/ws(\?|$)"), through)  # the first connect has no query
        await console.log_in(console_service.url, user.email)
        assert (await book(http, user, provider_account)).status_code == 201
        first = console.event("booking.created")
        await expect(first).to_have_count(1, timeout=LIVE_WITHIN_MS)
        last_seen = await first.get_attribute("data-event-id")

        await connections[0].close(code=1012, reason="service restart")
        await expect(console.event("booking.created")).to_have_count(2, timeout=LIVE_WITHIN_MS)
        await expect(console.page.get_by_test_id("connection-state")).to_have_attribute("data-state", "live")
        assert f"since={last_seen}" in connections[1].url
        assert all("token=" not in ws.url for ws in connections), "the token travels in the subprotocol"
        await expect(console.page.get_by_test_id("booking-row")).to_have_count(2)
        assert console.errors == []
