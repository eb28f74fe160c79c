"""The access policy as a table: role x relationship -> may see, edit, cancel, create."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.dialects import sqlite

from bookings import access
from bookings.auth.principal import Principal
from bookings.bookings import policy
from bookings.bookings.models import Booking
from bookings.events.models import Event
from bookings.users.models import Role

OWNER, PROVIDER, STRANGER, ADMIN = (uuid.uuid4() for _ in range(4))
BOOKING = Booking(id=uuid.uuid4(), user_id=OWNER, provider_id=PROVIDER)


@pytest.mark.parametrize(
    ("who", "may_edit", "may_cancel"),
    [
        (Principal(OWNER, Role.USER), True, True),
        (Principal(PROVIDER, Role.PROVIDER), False, True),
        (Principal(STRANGER, Role.USER), False, False),
        (Principal(STRANGER, Role.PROVIDER), False, False),
        (Principal(ADMIN, Role.ADMIN), True, True),
    ],
    ids=["owner", "assigned provider", "other user", "other provider", "admin"],
)
def test_who_may_change_a_booking(who: Principal, may_edit: bool, may_cancel: bool) -> None:
    assert policy.can_edit(who, BOOKING) is may_edit
    assert policy.can_cancel(who, BOOKING) is may_cancel


@pytest.mark.parametrize(("role", "allowed"), [(Role.USER, True), (Role.PROVIDER, False), (Role.ADMIN, False)])
def test_only_users_create_bookings(role: Role, allowed: bool) -> None:
    assert policy.can_create(Principal(uuid.uuid4(), role)) is allowed


def _sql(p: Principal) -> str:
    return str(policy.visible_to(p).clause.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))


def test_visibility_filters_by_role() -> None:
    assert "bookings.user_id" in _sql(Principal(OWNER, Role.USER))
    assert OWNER.hex in _sql(Principal(OWNER, Role.USER))
    assert "bookings.provider_id" in _sql(Principal(PROVIDER, Role.PROVIDER))
    assert _sql(Principal(ADMIN, Role.ADMIN)) in ("1", "true")


def test_only_the_policy_builds_its_proofs() -> None:
    with pytest.raises(TypeError):
        policy.VisibleBookings(access.audience(Principal(OWNER, Role.USER)), _key=object())
    with pytest.raises(TypeError):
        policy.BusyTime(PROVIDER, _key=object())


def test_the_events_follow_the_same_rule_as_their_bookings() -> None:
    for principal in (Principal(OWNER, Role.USER), Principal(PROVIDER, Role.PROVIDER), Principal(ADMIN, Role.ADMIN)):
        bookings = _sql(principal)
        where = access.audience(principal).where(Event.user_id, Event.provider_id)
        events = str(where.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
        assert events == bookings.replace("bookings.", "events.")


@pytest.mark.parametrize(
    ("principal", "user_id", "provider_id", "admitted"),
    [
        (Principal(OWNER, Role.USER), OWNER, PROVIDER, True),
        (Principal(OWNER, Role.USER), PROVIDER, OWNER, False),  # a user id in the provider column is not theirs
        (Principal(PROVIDER, Role.PROVIDER), OWNER, PROVIDER, True),
        (Principal(PROVIDER, Role.PROVIDER), PROVIDER, OWNER, False),
        (Principal(ADMIN, Role.ADMIN), OWNER, PROVIDER, True),
    ],
)
def test_the_python_form_of_the_rule_matches_its_sql_form(
    principal: Principal, user_id: uuid.UUID, provider_id: uuid.UUID, admitted: bool
) -> None:
    """``admits`` decides for a cached row what ``clause`` decides in a query."""
    visible = policy.visible_to(principal)
    assert visible.admits(user_id, provider_id) is admitted
    sql = _sql(principal)
    in_sql = sql in ("1", "true") or (user_id.hex in sql if "user_id" in sql else provider_id.hex in sql)
    assert in_sql is admitted
