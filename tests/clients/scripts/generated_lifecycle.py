"""Run by tests/clients/test_generated_python_client.py with only the generated package on its path.

Arguments: the service's base URL. It uses nothing but ``bookings_api_client`` (what openapi-python-client made
of ``/openapi.json``) and the standard library, goes through a booking's whole life, and prints one JSON object
with what it saw.
"""

from __future__ import annotations

import json
import secrets
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from bookings_api_client import AuthenticatedClient, Client
from bookings_api_client.api.auth import login, register
from bookings_api_client.api.bookings import (
    cancel_booking,
    create_booking,
    get_booking,
    get_booking_history,
    list_bookings,
    update_booking,
)
from bookings_api_client.models import (
    BookingCreate,
    BookingOut,
    BookingPatch,
    BookingWindow,
    CancelIn,
    LoginIn,
    PageBookingOut,
    PageHistoryOut,
    Problem,
    RegisterIn,
    RegistrationRole,
    TokenPair,
    UserOut,
)

PASSWORD = "Correct-Horse-9!"


def parsed(response: Any, expected: type) -> Any:
    assert isinstance(response.parsed, expected), (response.status_code, response.content)
    return response.parsed


def main(base_url: str) -> None:
    report: dict[str, Any] = {}
    suffix = secrets.token_hex(4)
    anonymous = Client(base_url=base_url, raise_on_unexpected_status=True)
    provider = parsed(
        register.sync_detailed(
            client=anonymous,
            body=RegisterIn(
                email=f"gen-prov-{suffix}@example.com", password=PASSWORD, name="P", role=RegistrationRole.PROVIDER
            ),
        ),
        UserOut,
    )
    register.sync(
        client=anonymous, body=RegisterIn(email=f"gen-user-{suffix}@example.com", password=PASSWORD, name="U")
    )
    tokens = parsed(
        login.sync_detailed(client=anonymous, body=LoginIn(email=f"gen-user-{suffix}@example.com", password=PASSWORD)),
        TokenPair,
    )
    report["token_type"] = tokens.token_type
    client = AuthenticatedClient(base_url=base_url, token=tokens.access_token, raise_on_unexpected_status=True)

    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=20)
    created = create_booking.sync_detailed(
        client=client,
        body=BookingCreate(provider_id=provider.id, start_time=start, end_time=start + timedelta(hours=1), notes="hi"),
    )
    booking = parsed(created, BookingOut)
    report["created"] = {
        "status": created.status_code,
        "etag": created.headers["etag"],
        "request_id": bool(created.headers.get("x-request-id")),
        "cancel_reason": booking.cancel_reason,
        "booking_status": booking.status.value,
    }

    page = parsed(list_bookings.sync_detailed(client=client, type_=BookingWindow.UPCOMING, limit=10), PageBookingOut)
    report["listed"] = [str(item.id) for item in page.items]

    moved = parsed(
        update_booking.sync_detailed(
            booking.id,
            client=client,
            body=BookingPatch(start_time=start + timedelta(hours=2), end_time=start + timedelta(hours=3)),
            if_match=created.headers["etag"],
        ),
        BookingOut,
    )
    report["rescheduled"] = {"version": moved.version, "start": moved.start_time.isoformat()}

    clash = create_booking.sync_detailed(
        client=client,
        body=BookingCreate(
            provider_id=provider.id, start_time=start + timedelta(hours=2), end_time=start + timedelta(hours=3)
        ),
    )
    problem = parsed(clash, Problem)
    report["conflict"] = {"status": clash.status_code, "type": problem.type_, "request_id": bool(problem.request_id)}

    invalid = create_booking.sync_detailed(
        client=client,
        body=BookingCreate(provider_id=provider.id, start_time=start + timedelta(hours=9), end_time=start),
    )
    problem = parsed(invalid, Problem)
    report["invalid"] = {"status": invalid.status_code, "fields": [error.field for error in problem.errors]}

    cancelled = parsed(cancel_booking.sync_detailed(booking.id, client=client), BookingOut)  # no body at all
    report["cancelled"] = {"status": cancelled.status.value, "reason": cancelled.cancel_reason}
    again = parsed(cancel_booking.sync_detailed(booking.id, client=client, body=CancelIn(reason="twice")), BookingOut)
    report["cancelled_again"] = {"version": again.version, "reason": again.cancel_reason}

    fetched = parsed(get_booking.sync_detailed(booking.id, client=client), BookingOut)
    report["fetched"] = fetched.status.value
    history = parsed(get_booking_history.sync_detailed(booking.id, client=client), PageHistoryOut)
    report["history"] = [entry.action.value for entry in history.items]
    report["modules"] = sorted(name for name in sys.modules if name.split(".")[0] in {"bookings", "bookings_client"})
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
