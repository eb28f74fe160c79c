"""Availability in the web console, in a real browser (Chromium, by Playwright) against a real ``bookings serve``.

A provider who works in Berlin sets their weekly hours and closes a day from the console; a user whose browser is
in New York picks that provider and a day, sees the slots in New York time, and books one with a click. A provider
with no schedule is booked with the free-form fields, as before. Each page leaves a screenshot in
``test-artifacts/``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.conftest import Service
from tests.e2e.test_console import ARTIFACTS, LIVE_WITHIN_MS, Console, browser, console_service, http, utc_text
from tests.support.api import Account, account, login, register

__all__ = ["browser", "console_service", "http"]  # fixtures, shared with test_console.py

BROWSER_ZONE = "America/New_York"
NEW_YORK = ZoneInfo(BROWSER_ZONE)
BERLIN = ZoneInfo("Europe/Berlin")
# Chromium reports every 4xx answer as a console error: a provider with no schedule is one (404), on purpose.
REFUSED = "Failed to load resource: the server responded with a status of {status} "

OpenPage = Callable[[], Awaitable[Console]]


@pytest.fixture
async def open_page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[OpenPage]:
    """Pages of their own (one per person), each a browser in New York, en-GB (24-hour times)."""
    consoles: list[Console] = []

    async def new_page() -> Console:
        context = await browser.new_context(
            timezone_id=BROWSER_ZONE, locale="en-GB", viewport={"width": 1280, "height": 900}
        )
        consoles.append(Console(await context.new_page()))
        return consoles[-1]

    yield new_page
    ARTIFACTS.mkdir(exist_ok=True)
    for n, console in enumerate(consoles):
        await console.page.screenshot(path=ARTIFACTS / f"{request.node.name}-{n}.png", full_page=True)
        await console.page.context.close()


def unexpected(console: Console, *statuses: int) -> list[str]:
    """The page's errors, but for the refusals (by status) that the test asked for."""
    expected = tuple(REFUSED.format(status=status) for status in statuses)
    return [error for error in console.errors if not error.startswith(expected)]


async def named_account(client: httpx.AsyncClient, role: str, name: str) -> Account:
    registered = await register(client, role, name=name)
    tokens = await login(client, registered["email"])
    return Account(registered["id"], registered["email"], role, tokens["accessToken"], tokens["refreshToken"])


def weekday_ahead(weekday: int, days: int = 8) -> date:
    """The first ``weekday`` (Monday 0) at least ``days`` days from today in Berlin."""
    first = datetime.now(BERLIN).date() + timedelta(days=days)
    return first + timedelta(days=(weekday - first.weekday()) % 7)


def berlin(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=BERLIN)


def new_york_text(start: datetime, end: datetime) -> str:
    return f"{start.astimezone(NEW_YORK):%H:%M} – {end.astimezone(NEW_YORK):%H:%M}"


async def open_editor(console: Console) -> None:
    await console.page.get_by_test_id("availability-open").click()
    await expect(console.page.get_by_test_id("hours-zone")).to_be_visible()


async def test_a_provider_sets_hours_and_closes_a_day_and_a_user_books_a_slot_in_their_zone(
    open_page: OpenPage, console_service: Service, http: httpx.AsyncClient
) -> None:
    provider_account = await named_account(http, "provider", "Dr. Lise Meitner")
    user_account = await account(http, "user")
    monday, tuesday = weekday_ahead(0), weekday_ahead(0) + timedelta(days=1)

    # The provider, whose browser is in New York too, works in Berlin: Monday to Friday 09:00-12:00, one-hour slots.
    provider = await open_page()
    await provider.log_in(console_service.url, provider_account.email)
    await open_editor(provider)
    page = provider.page
    await expect(page.get_by_test_id("hours-state")).to_contain_text("No hours set yet")
    await expect(page.get_by_test_id("hours-zone")).to_have_value(BROWSER_ZONE)  # the browser's, to start with
    await expect(page.get_by_test_id("day-save")).to_be_disabled()  # no day off before there are hours
    await page.get_by_label("Time zone").fill("Europe/Berlin")
    for day in ("monday", "tuesday", "wednesday", "thursday"):
        await page.get_by_test_id(f"hours-{day}").fill("09:00-12:00")
    await page.get_by_test_id("hours-friday").fill("9:00 - 10:00, 10:00-12:00")  # touching is fine
    await page.get_by_label("Slot length (minutes)").fill("60")
    await page.get_by_test_id("hours-save").click()
    await expect(page.get_by_test_id("hours-state")).to_contain_text("Saved: version 1")

    path = f"/v1/providers/{provider_account.id}/availability"
    saved = (await http.get(path, headers=provider_account.headers)).json()
    assert saved["timeZone"] == "Europe/Berlin"
    assert saved["slotLengthMinutes"] == saved["slotIntervalMinutes"] == 60
    assert saved["weeklyHours"]["monday"] == [{"start": "09:00", "end": "12:00"}]
    assert saved["weeklyHours"]["friday"] == [{"start": "09:00", "end": "10:00"}, {"start": "10:00", "end": "12:00"}]
    assert saved["weeklyHours"]["saturday"] == saved["weeklyHours"]["sunday"] == []

    # ... and closes that Tuesday.
    await page.get_by_label("Date", exact=True).fill(tuesday.isoformat())
    await page.get_by_label("Note", exact=True).fill("Conference")
    await page.get_by_test_id("day-save").click()
    closed = page.locator(f'[data-testid="override-row"][data-date="{tuesday}"]')
    await expect(closed).to_contain_text("closed")
    await expect(closed).to_contain_text("Conference")
    overrides = (await http.get(f"{path}/overrides", headers=provider_account.headers)).json()
    assert [(o["date"], o["intervals"], o["note"]) for o in overrides["items"]] == [
        (tuesday.isoformat(), [], "Conference")
    ]

    # The user, in New York, picks the provider and the Monday: its three Berlin-morning slots, in New York time.
    user = await open_page()
    await user.log_in(console_service.url, user_account.email)
    upage = user.page
    await upage.get_by_test_id("booking-provider").select_option(label="Dr. Lise Meitner")
    await upage.get_by_test_id("slot-day").fill(monday.isoformat())
    starts = [berlin(monday, hour) for hour in (9, 10, 11)]
    shown = [new_york_text(start, start + timedelta(hours=1)) for start in starts]
    slots = upage.get_by_test_id("slot")
    await expect(slots).to_have_text(shown)  # e.g. 03:00 to 04:00: Berlin is six hours ahead (five, some weeks)
    assert shown[0] != f"{starts[0]:%H:%M} – {starts[0] + timedelta(hours=1):%H:%M}", "not the provider's times"
    hint = upage.get_by_test_id("slot-hint")
    await expect(hint).to_contain_text("3 open slots · times in America/New_York; the provider works in Europe/Berlin")
    await expect(upage.get_by_test_id("booking-start")).to_be_hidden()  # a scheduled provider is booked by slot
    await expect(upage.get_by_test_id("booking-submit")).to_be_hidden()

    # The closed Tuesday offers nothing.
    await upage.get_by_test_id("slot-day").fill(tuesday.isoformat())
    await expect(hint).to_contain_text("No open slots")
    await expect(slots).to_have_count(0)

    # Back to Monday: one click on the second slot books it.
    await upage.get_by_test_id("slot-day").fill(monday.isoformat())
    await expect(slots).to_have_count(3)
    await upage.get_by_test_id("booking-notes").fill("First visit")
    await upage.get_by_role("button", name=f"Book {shown[1]}").click()
    await expect(hint).to_contain_text(f"Booked {shown[1]}. 2 open slots")
    await expect(slots).to_have_text([shown[0], shown[2]])
    await expect(upage.get_by_test_id("booking-row")).to_have_count(1)
    await expect(upage.get_by_test_id("booking-row")).to_contain_text("Dr. Lise Meitner")

    mine = (await http.get("/v1/bookings", headers=user_account.headers)).json()["items"]
    assert [(b["providerId"], b["startTime"], b["endTime"], b["notes"]) for b in mine] == [
        (provider_account.id, utc_text(starts[1]), utc_text(starts[1] + timedelta(hours=1)), "First visit")
    ]
    # The provider sees it arrive.
    await expect(provider.event("booking.created", mine[0]["id"])).to_have_count(1, timeout=LIVE_WITHIN_MS)
    assert unexpected(provider, 404) == []  # it had no schedule when the editor opened
    assert user.errors == []


async def test_the_provider_edits_saved_hours_and_reopens_the_day(
    open_page: OpenPage, console_service: Service, http: httpx.AsyncClient
) -> None:
    provider_account = await account(http, "provider")
    path = f"/v1/providers/{provider_account.id}/availability"
    first = {"timeZone": "Europe/Berlin", "weeklyHours": {"monday": [{"start": "09:00", "end": "12:00"}]}}
    first |= {"slotLengthMinutes": 45, "bufferAfterMinutes": 15, "maxBookingsPerDay": 4}
    assert (await http.put(path, json=first, headers=provider_account.headers)).status_code == 201
    friday = weekday_ahead(4)
    closed = await http.put(f"{path}/overrides/{friday}", json={"intervals": []}, headers=provider_account.headers)
    assert closed.status_code == 201

    provider = await open_page()
    await provider.log_in(console_service.url, provider_account.email)
    await open_editor(provider)
    page = provider.page
    await expect(page.get_by_test_id("hours-state")).to_contain_text("Saved: version 2")  # the override is one
    await expect(page.get_by_test_id("hours-zone")).to_have_value("Europe/Berlin")
    await expect(page.get_by_label("Monday", exact=True)).to_have_value("09:00-12:00")
    await expect(page.get_by_label("Tuesday", exact=True)).to_have_value("")
    await expect(page.get_by_test_id("hours-slot-length")).to_have_value("45")
    await expect(page.get_by_test_id("hours-slot-interval")).to_have_value("")  # the same as the length
    row = page.locator(f'[data-testid="override-row"][data-date="{friday}"]')
    await expect(row).to_contain_text("closed")

    # A wrong interval is refused before anything is sent, and says which day.
    tuesday = page.get_by_test_id("hours-tuesday")
    await tuesday.fill("9 to 5")
    await page.get_by_test_id("hours-save").click()
    await expect(page.get_by_test_id("problem")).to_contain_text("Tuesday: write each interval as HH:MM-HH:MM")
    # One the service refuses names its field.
    await tuesday.fill("12:00-09:00")
    await page.get_by_test_id("hours-save").click()
    await expect(page.get_by_test_id("problem").locator("li")).to_contain_text("weeklyHours.tuesday")

    await tuesday.fill("13:00-17:00")
    await page.get_by_test_id("hours-save").click()
    await expect(page.get_by_test_id("hours-state")).to_contain_text("Saved: version 3")
    saved = (await http.get(path, headers=provider_account.headers)).json()
    assert saved["weeklyHours"]["tuesday"] == [{"start": "13:00", "end": "17:00"}]
    # The rules the form did not change are kept: a full replace that sends them all.
    assert (saved["slotLengthMinutes"], saved["bufferAfterMinutes"], saved["maxBookingsPerDay"]) == (45, 15, 4)

    # Changed elsewhere meanwhile: the save is refused (If-Match), and the form shows what is there now.
    elsewhere = {**first, "slotLengthMinutes": 30}
    headers = {**provider_account.headers, "If-Match": '"3"'}
    assert (await http.put(path, json=elsewhere, headers=headers)).status_code == 200
    await page.get_by_test_id("hours-wednesday").fill("09:00-10:00")
    await page.get_by_test_id("hours-save").click()
    await expect(page.get_by_test_id("problem")).to_contain_text("The form now shows the saved hours")
    await expect(page.get_by_test_id("hours-slot-length")).to_have_value("30")
    await expect(page.get_by_test_id("hours-wednesday")).to_have_value("")

    await row.get_by_test_id("override-remove").click()
    await expect(row).to_have_count(0)
    assert (await http.get(f"{path}/overrides", headers=provider_account.headers)).json()["items"] == []
    assert unexpected(provider, 422, 412) == []


async def test_a_provider_without_hours_is_booked_at_any_time(
    open_page: OpenPage, console_service: Service, http: httpx.AsyncClient
) -> None:
    await named_account(http, "provider", "Dr. Chien-Shiung Wu")
    user_account = await account(http, "user")
    user = await open_page()
    await user.log_in(console_service.url, user_account.email)
    page = user.page

    day = weekday_ahead(2)
    await page.get_by_test_id("booking-provider").select_option(label="Dr. Chien-Shiung Wu")
    await page.get_by_test_id("slot-day").fill(day.isoformat())
    await expect(page.get_by_test_id("slot-hint")).to_contain_text("Dr. Chien-Shiung Wu has not set their hours")
    await expect(page.get_by_test_id("slots")).to_be_hidden()

    start = datetime.combine(day, time(7, 15), tzinfo=NEW_YORK)
    await user.book("Dr. Chien-Shiung Wu", start, start + timedelta(minutes=20), notes="Any time")
    await expect(page.get_by_test_id("booking-row")).to_have_count(1)
    mine = (await http.get("/v1/bookings", headers=user_account.headers)).json()["items"]
    assert [(b["startTime"], b["endTime"]) for b in mine] == [
        (utc_text(start), utc_text(start + timedelta(minutes=20)))
    ]
    assert unexpected(user, 404) == []
