"""Mail on real processes and a real SMTP server (aiosmtpd on loopback), embedded and distributed.

Each change of a booking mails its user and its provider once each, with an invite that calendars apply to one
event (one ``UID``, a rising ``SEQUENCE``); a refusing or vanished SMTP server means retries, dead letters and a
replay that works; a worker killed mid-send sends a message at most once more; mail turned off sends nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import icalendar
import psycopg
import pytest

from tests.conftest import TEST_ENV
from tests.support.api import Account, account, admin_account, book, future_slot, iso
from tests.support.databases import ScratchDatabase, create_postgres, create_sqlite
from tests.support.redis_server import RedisServer
from tests.support.servers import ServerProcess, WorkerProcess, free_port
from tests.support.smtp_server import Received, SmtpServer

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
LEAD = 3  # seconds of reminder lead: a booking starting in LEAD + n seconds is reminded in n seconds
SENDER = "Clinic Bookings <bookings@clinic.test>"
QUIET_SECONDS = 1.0  # after the expected mail arrived: long enough for a duplicate to show up


@dataclass
class Deployment:
    mode: str
    db: ScratchDatabase
    env: dict[str, str]
    tmp: Path
    api: ServerProcess
    redis: RedisServer | None = None
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.api.url

    def start_worker(self) -> WorkerProcess:
        log = self.tmp / f"worker-{len(self.workers)}.log"
        worker = WorkerProcess(env=self.env, log_path=log).start()
        self.workers.append(worker)
        return worker

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.api.stop()
        if self.redis is not None:
            self.redis.stop()
        self.db.drop()


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def _deploy(mode: str, tmp: Path, smtp: SmtpServer) -> Deployment:
    port = free_port()
    env = {
        **TEST_ENV,
        "BOOKINGS_SMTP_URL": smtp.url,
        "BOOKINGS_MAIL_FROM": SENDER,
        "BOOKINGS_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "BOOKINGS_MAIL_MAX_ATTEMPTS": "3",
        "BOOKINGS_REMINDER_LEAD_SECONDS": str(LEAD),
        "BOOKINGS_JOB_BACKOFF_SECONDS": "0.2",
        "BOOKINGS_JOB_LEASE_SECONDS": "3",
        "BOOKINGS_RELAY_POLL_SECONDS": "0.5",
    }
    redis = None
    if mode == "embedded":
        db = create_sqlite(tmp)
    else:
        db, redis = create_postgres(), RedisServer(tmp).start()
        env |= {"BOOKINGS_REDIS_URL": redis.url}
    env["BOOKINGS_DATABASE_URL"] = db.url
    api = ServerProcess(env=env, log_path=tmp / "api.log", port=port).start()
    deployment = Deployment(mode, db, env, tmp, api, redis)
    if mode == "distributed":
        deployment.start_worker()
    return deployment


@pytest.fixture(scope="module", params=["embedded", "distributed"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, smtp: SmtpServer
) -> Iterator[Deployment]:
    deployed = _deploy(request.param, tmp_path_factory.mktemp(f"mail-{request.param}"), smtp)
    yield deployed
    deployed.stop()


on_embedded = pytest.mark.parametrize("deployment", ["embedded"], indirect=True)
# The fault tests run on the distributed deployment (a worker process to kill), the same instance as above.
on_distributed = pytest.mark.parametrize("deployment", ["distributed"], indirect=True)


def _invite(received: Received) -> icalendar.Calendar:
    calendar = icalendar.Calendar.from_ical(received.part("text/calendar"))
    assert isinstance(calendar, icalendar.Calendar)
    return calendar


def _vevent(received: Received) -> icalendar.Event:
    (vevent,) = _invite(received).walk("VEVENT")
    return vevent


def _subjects(messages: list[Received]) -> list[str]:
    return [str(m.message["Subject"]).split(":")[0] for m in messages]


def _local(moment: str, zone: str) -> str:
    return datetime.fromisoformat(moment).astimezone(ZoneInfo(zone)).strftime("%H:%M")


async def _quiet_then_count(smtp: SmtpServer, address: str) -> int:
    await asyncio.sleep(QUIET_SECONDS)
    return len(smtp.to(address))


async def _people(client: httpx.AsyncClient) -> tuple[Account, Account]:
    user, provider = await account(client, "user"), await account(client, "provider")
    return user, provider


async def test_each_change_mails_both_people_once_with_one_calendar_event(
    deployment: Deployment, smtp: SmtpServer
) -> None:
    async with httpx.AsyncClient(base_url=deployment.url, timeout=30) as client:
        user, provider = await _people(client)
        zone = "America/New_York"
        me = await client.patch("/v1/users/me", json={"timeZone": zone}, headers=user.headers)
        assert me.status_code == 200, me.text
        assert me.json()["timeZone"] == zone
        notes = "<script>alert('hi')</script> & <b>bold</b>"
        created = await book(client, user, provider, future_slot(), notes=notes)
        assert created.status_code == 201, created.text
        booking = created.json()
        smtp.wait_for(lambda: len(smtp.to(user.email)) == 1 and len(smtp.to(provider.email)) == 1)

        new_start, new_end = future_slot()
        moved = await client.patch(
            f"/v1/bookings/{booking['id']}", json={"startTime": new_start, "endTime": new_end}, headers=user.headers
        )
        assert moved.status_code == 200, moved.text
        smtp.wait_for(lambda: len(smtp.to(user.email)) == 2 and len(smtp.to(provider.email)) == 2)
        noted = await client.patch(f"/v1/bookings/{booking['id']}", json={"notes": notes}, headers=user.headers)
        assert noted.status_code == 200  # a changed note alone is worth no mail
        cancelled = await client.post(
            f"/v1/bookings/{booking['id']}/cancel", json={"reason": "Ill <i>today</i>"}, headers=provider.headers
        )
        assert cancelled.status_code == 200, cancelled.text
        smtp.wait_for(lambda: len(smtp.to(user.email)) == 3 and len(smtp.to(provider.email)) == 3)
        assert await _quiet_then_count(smtp, user.email) == 3
        assert len(smtp.to(provider.email)) == 3

    for person in (user, provider):
        messages = smtp.to(person.email)
        assert _subjects(messages) == ["Booked", "Moved", "Cancelled"]
        assert len({m.message_id for m in messages}) == 3
        for received in messages:
            assert received.recipients == (person.email,)
            assert str(received.message["From"]) == SENDER
            unsubscribe = str(received.message["List-Unsubscribe"])
            assert unsubscribe.startswith(f"<{deployment.url}/v1/mail/unsubscribe?token=")
            assert str(received.message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
            html = received.part("text/html")
            for raw in ("<script>", "<b>bold", "<i>today"):
                assert raw not in html
            assert "&lt;script&gt;" in html
        events = [_vevent(m) for m in messages]
        assert {str(e["UID"]) for e in events} == {f"booking-{booking['id']}@bookings"}
        assert [int(e["SEQUENCE"]) for e in events] == [1, 2, 4]  # version 3 changed the notes only
        assert [str(_invite(m)["METHOD"]) for m in messages] == ["REQUEST", "REQUEST", "CANCEL"]
        assert str(events[-1]["STATUS"]) == "CANCELLED"
        assert events[1].decoded("DTSTART") == datetime.fromisoformat(new_start)
        assert {str(a).removeprefix("mailto:") for a in events[0].get("ATTENDEE")} == {user.email, provider.email}

    # Times in the reader's zone: the user's own, the provider's UTC (no zone, no schedule).
    moved_text = smtp.to(user.email)[1].part("text/plain")
    assert _local(new_start, zone) in moved_text
    assert _local(booking["startTime"], zone) in moved_text
    assert zone in moved_text
    provider_text = smtp.to(provider.email)[1].part("text/plain")
    assert _local(new_start, "UTC") in provider_text
    assert "(UTC)" in provider_text
    assert "Ill <i>today</i>" in smtp.to(user.email)[2].part("text/plain")  # plain text is not HTML-escaped


@on_embedded  # which zone a message is written in does not depend on the mode
async def test_a_provider_without_a_zone_of_its_own_reads_times_in_its_schedule_zone(
    deployment: Deployment, smtp: SmtpServer
) -> None:
    zone = "Asia/Tokyo"
    async with httpx.AsyncClient(base_url=deployment.url, timeout=30) as client:
        user, provider = await _people(client)
        every_day = {day: [{"start": "00:00", "end": "24:00"}] for day in WEEKDAYS}
        schedule = {"timeZone": zone, "slotLengthMinutes": 60, "weeklyHours": every_day}
        saved = await client.put(f"/v1/providers/{provider.id}/availability", json=schedule, headers=provider.headers)
        assert saved.status_code == 201, saved.text
        day = (datetime.now(UTC) + timedelta(days=20)).date().isoformat()
        slots = await client.get(
            f"/v1/providers/{provider.id}/slots", params={"from": day, "to": day}, headers=user.headers
        )
        assert slots.status_code == 200, slots.text
        slot = slots.json()["slots"][9]
        created = await book(client, user, provider, (slot["startTime"], slot["endTime"]))
        assert created.status_code == 201, created.text
        smtp.wait_for(lambda: len(smtp.to(provider.email)) == 1 and len(smtp.to(user.email)) == 1)
    provider_text = smtp.to(provider.email)[0].part("text/plain")
    assert f"({zone})" in provider_text
    assert _local(slot["startTime"], zone) == "09:00"
    assert "09:00" in provider_text
    assert "(UTC)" in smtp.to(user.email)[0].part("text/plain")  # the user has no zone: UTC


async def test_the_reminder_mails_both_people_once_at_the_lead_time(deployment: Deployment, smtp: SmtpServer) -> None:
    async with httpx.AsyncClient(base_url=deployment.url, timeout=30) as client:
        user, provider = await _people(client)
        start = (datetime.now(UTC) + timedelta(seconds=LEAD + 2)).replace(microsecond=0) + timedelta(seconds=1)
        due = start - timedelta(seconds=LEAD)
        created = await book(client, user, provider, (iso(start), iso(start + timedelta(minutes=30))))
        assert created.status_code == 201, created.text

    def reminded() -> bool:
        return all(_subjects(smtp.to(p.email)).count("Reminder") == 1 for p in (user, provider))

    smtp.wait_for(reminded, what="the reminders")
    assert datetime.now(UTC) >= due
    await asyncio.sleep(QUIET_SECONDS)
    for person in (user, provider):
        assert _subjects(smtp.to(person.email)) == ["Booked", "Reminder"]
        assert int(_vevent(smtp.to(person.email)[1])["SEQUENCE"]) == 1


async def test_mail_turned_off_sends_nothing_and_the_unsubscribe_link_turns_it_off(
    deployment: Deployment, smtp: SmtpServer
) -> None:
    async with httpx.AsyncClient(base_url=deployment.url, timeout=30) as client:
        user, provider = await _people(client)
        off = await client.patch("/v1/users/me", json={"emailNotifications": False}, headers=user.headers)
        assert off.status_code == 200
        assert off.json()["emailNotifications"] is False
        assert (await book(client, user, provider, future_slot())).status_code == 201
        smtp.wait_for(lambda: len(smtp.to(provider.email)) == 1)
        assert await _quiet_then_count(smtp, user.email) == 0

        # The provider follows the link in its mail: the page asks first (a link scanner changes nothing) ...
        link = str(smtp.to(provider.email)[0].message["List-Unsubscribe"]).strip("<>")
        page = await client.get(link)
        assert page.status_code == 200
        assert 'method="post"' in page.text
        me = await client.get("/v1/users/me", headers=provider.headers)
        assert me.json()["emailNotifications"] is True
        forged = await client.post(link[:-3] + "AAA", content="List-Unsubscribe=One-Click")
        assert forged.status_code == 404
        # ... and the one-click POST (RFC 8058) turns it off.
        clicked = await client.post(
            link,
            content="List-Unsubscribe=One-Click",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert clicked.status_code == 200, clicked.text
        me = await client.get("/v1/users/me", headers=provider.headers)
        assert me.json()["emailNotifications"] is False

        other = await account(client, "user")
        assert (await book(client, other, provider, future_slot())).status_code == 201
        smtp.wait_for(lambda: len(smtp.to(other.email)) == 1)
        assert await _quiet_then_count(smtp, provider.email) == 1


def _mail_jobs(deployment: Deployment) -> dict[str, int]:
    with psycopg.connect(deployment.db.url) as conn:
        rows = conn.execute("SELECT state, count(*) FROM jobs WHERE kind = 'mail' GROUP BY state").fetchall()
    return dict(rows)


async def _dead_mail(client: httpx.AsyncClient, admin: Account, *, at_least: int = 0) -> list[dict[str, object]]:
    """The mail jobs in the dead letters, once there are ``at_least`` (waiting up to 20 s for them)."""
    for _ in range(200):
        page = await client.get("/v1/admin/dead-letters", params={"limit": 100}, headers=admin.headers)
        assert page.status_code == 200, page.text
        dead = [item for item in page.json()["items"] if item["kind"] == "mail"]
        if len(dead) >= at_least:
            return dead
        await asyncio.sleep(0.1)
    return dead


@on_distributed
async def test_refusals_retry_then_dead_letter_and_a_replay_delivers(deployment: Deployment, smtp: SmtpServer) -> None:
    distributed = deployment
    async with httpx.AsyncClient(base_url=distributed.url, timeout=30) as client:
        admin = await admin_account(client, distributed.db.url, TEST_ENV["BOOKINGS_JWT_KEYS"])

        # 4xx: try again later. Both messages arrive, once each, after their refused attempts.
        user, provider = await _people(client)
        smtp.refuse("451 4.3.0 Try again later", "451 4.3.0 Try again later")
        assert (await book(client, user, provider, future_slot())).status_code == 201
        smtp.wait_for(lambda: len(smtp.to(user.email)) == 1 and len(smtp.to(provider.email)) == 1)
        delivered = {m.message_id for p in (user, provider) for m in smtp.to(p.email)}
        refused = {mid for mid, reply in smtp.attempts if reply.startswith("451")}
        assert refused
        assert refused <= delivered  # a retry is the same message (the same Message-ID)
        assert await _dead_mail(client, admin) == []

        # 5xx: the server's final word. Dead at once (one attempt), and a replay sends it.
        user, provider = await _people(client)
        smtp.refuse("550 5.1.1 Mailbox unavailable")
        assert (await book(client, user, provider, future_slot())).status_code == 201
        smtp.wait_for(lambda: len(smtp.to(user.email)) + len(smtp.to(provider.email)) == 1)
        dead = await _dead_mail(client, admin, at_least=1)
        assert len(dead) == 1
        assert dead[0]["attempts"] == 1
        assert "550" in str(dead[0]["lastError"])
        retried = await client.post(f"/v1/admin/dead-letters/{dead[0]['id']}/retry", headers=admin.headers)
        assert retried.status_code == 202, retried.text
        smtp.wait_for(lambda: len(smtp.to(user.email)) == 1 and len(smtp.to(provider.email)) == 1)

        # Down: every attempt fails to connect, then both are dead; once it is back, a replay sends each once.
        user, provider = await _people(client)
        smtp.stop()
        try:
            assert (await book(client, user, provider, future_slot())).status_code == 201
            dead = await _dead_mail(client, admin, at_least=2)
        finally:
            smtp.start()
        assert len(dead) == 2, dead
        assert all(d["attempts"] == 3 for d in dead), dead
        for letter in dead:
            retried = await client.post(f"/v1/admin/dead-letters/{letter['id']}/retry", headers=admin.headers)
            assert retried.status_code == 202
        smtp.wait_for(lambda: len(smtp.to(user.email)) == 1 and len(smtp.to(provider.email)) == 1)
        assert await _quiet_then_count(smtp, user.email) == 1
        assert len(smtp.to(provider.email)) == 1
        assert await _dead_mail(client, admin) == []


@on_distributed
async def test_a_worker_killed_mid_send_sends_each_message_at_most_once_more(
    deployment: Deployment, smtp: SmtpServer
) -> None:
    distributed = deployment
    async with httpx.AsyncClient(base_url=distributed.url, timeout=30) as client:
        user, provider = await _people(client)
        smtp.hold()  # the server takes each message, and keeps its "250" back
        held = smtp.held
        try:
            assert (await book(client, user, provider, future_slot())).status_code == 201
            smtp.wait_for(lambda: smtp.held == held + 2, what="both messages in flight")
            for worker in distributed.workers:
                worker.kill()
        finally:
            smtp.release()
        distributed.start_worker()  # takes the jobs over once their lease (3 s) has run out
        smtp.wait_for(
            lambda: _mail_jobs(distributed).get("running", 0) == 0 and "pending" not in _mail_jobs(distributed),
            timeout=30,
            what="the mail jobs to finish",
        )
    await asyncio.sleep(QUIET_SECONDS)
    for person in (user, provider):
        messages = smtp.to(person.email)
        assert 1 <= len(messages) <= 2, messages  # never lost, at most once more
        assert len({m.message_id for m in messages}) == 1  # a repeat is recognisably the same message
    assert "dead" not in _mail_jobs(distributed)
