"""Run by tests/sdk/test_fresh_venv.py with the Python of a fresh virtualenv holding only ``bookings-client``.

Argument: the service's base URL. Prints one JSON object with what it saw; fails loudly on anything unexpected.
"""

from __future__ import annotations

import importlib.util
import json
import secrets
import sys
from datetime import UTC, datetime, timedelta, timezone

import bookings_client
from bookings_client import Booking, BookingsClient, ConflictError, InvalidArgumentError, Page

PASSWORD = "Correct-Horse-9!"


def main(base_url: str) -> None:
    report: dict[str, object] = {
        "sdk_file": bookings_client.__file__,
        "service_importable": importlib.util.find_spec("bookings") is not None,
    }
    suffix = secrets.token_hex(4)
    with BookingsClient(base_url, timeout=10) as client:
        provider = client.auth.register(
            email=f"prov-{suffix}@example.com", password=PASSWORD, name="Provider", role="provider"
        )
        client.auth.register(email=f"user-{suffix}@example.com", password=PASSWORD, name="User")
        client.auth.login(email=f"user-{suffix}@example.com", password=PASSWORD)

        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=10)
        booking = client.bookings.create(
            provider_id=provider.id, start_time=start, end_time=start + timedelta(hours=1), notes="hello"
        )
        assert isinstance(booking, Booking)
        report["created"] = {"id": str(booking.id), "status": booking.status, "notes": booking.notes}
        assert booking.start_time == start
        assert booking.start_time.utcoffset() == timedelta(0)

        page = client.bookings.list(type="upcoming")
        assert isinstance(page, Page)
        report["listed"] = {"total": page.total, "ids": [str(b.id) for b in page.items]}

        plus_two = timezone(timedelta(hours=2))
        new_start = (start + timedelta(hours=3)).astimezone(plus_two)  # any offset in, UTC out
        moved = client.bookings.reschedule(booking.id, start_time=new_start, end_time=new_start + timedelta(hours=1))
        report["rescheduled"] = {"start": moved.start_time.isoformat(), "same_instant": moved.start_time == new_start}

        try:
            client.bookings.create(
                provider_id=provider.id,
                start_time=new_start + timedelta(minutes=30),
                end_time=new_start + timedelta(minutes=90),
            )
            report["conflict"] = None
        except ConflictError as error:
            report["conflict"] = {
                "status": error.status,
                "title": error.title,
                "detail": error.detail,
                "is_bookings_error": isinstance(error, bookings_client.BookingsError),
            }

        try:
            client.bookings.create(provider_id=provider.id, start_time=datetime(2030, 1, 1), end_time=start)
            report["naive"] = None
        except InvalidArgumentError as error:
            report["naive"] = str(error)

        cancelled = client.bookings.cancel(booking.id, reason="changed my mind")
        report["cancelled"] = {"status": cancelled.status, "reason": cancelled.cancel_reason}
        report["fetched"] = client.bookings.get(booking.id).status
        client.auth.logout()
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
