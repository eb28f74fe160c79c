"""A booking's history (design §6): every version, by whom and from which request, kept after events are pruned."""

from __future__ import annotations

import httpx

from tests.conftest import Service
from tests.support.api import Account, account, future_slot


class TestHistory:
    async def test_every_change_is_there_with_its_actor_request_and_changes_after_events_are_pruned(
        self, api: httpx.AsyncClient, service: Service, admin: Account
    ) -> None:
        user, provider = await account(api), await account(api, "provider")
        start, end = future_slot()
        created = await api.post(
            "/v1/bookings",
            json={"providerId": provider.id, "startTime": start, "endTime": end, "notes": "first visit"},
            headers={**user.headers, "X-Request-ID": "req-create"},
        )
        path = created.headers["Location"]
        new_start, new_end = future_slot()
        moved = await api.patch(
            path,
            json={"startTime": new_start, "endTime": new_end},
            headers={**admin.headers, "X-Request-ID": "req-move"},
        )
        edited = await api.patch(path, json={"notes": None}, headers={**user.headers, "X-Request-ID": "req-notes"})
        cancelled = await api.post(
            f"{path}/cancel", json={"reason": "ill"}, headers={**provider.headers, "X-Request-ID": "req-cancel"}
        )
        assert [r.status_code for r in (created, moved, edited, cancelled)] == [201, 200, 200, 200]
        service.db.execute("DELETE FROM events")  # as the relay's pruning does once they are past retention

        answer = await api.get(f"{path}/history", headers=user.headers)

        assert answer.status_code == 200, answer.text
        page = answer.json()
        assert (page["total"], page["hasMore"], page["nextCursor"]) == (4, False, None)
        entries = page["items"]
        assert [(e["version"], e["action"], e["requestId"]) for e in entries] == [
            (1, "created", "req-create"),
            (2, "rescheduled", "req-move"),
            (3, "updated", "req-notes"),
            (4, "cancelled", "req-cancel"),
        ]
        assert [e["actor"] for e in entries] == [
            {"userId": user.id, "role": "user"},
            {"userId": admin.id, "role": "admin"},
            {"userId": user.id, "role": "user"},
            {"userId": provider.id, "role": "provider"},
        ]
        assert entries[0]["changes"] == {
            "startTime": {"from": None, "to": start},
            "endTime": {"from": None, "to": end},
            "notes": {"from": None, "to": "first visit"},
        }
        assert entries[1]["changes"] == {
            "startTime": {"from": start, "to": new_start},
            "endTime": {"from": end, "to": new_end},
        }
        assert entries[2]["changes"] == {"notes": {"from": "first visit", "to": None}}
        assert entries[3]["changes"] == {"status": {"from": "confirmed", "to": "cancelled"}}
        assert [e["reason"] for e in entries] == [None, None, None, "ill"]
        assert entries[3]["occurredAt"] == cancelled.json()["updatedAt"]

    async def test_it_is_walked_by_cursor_and_hidden_from_whoever_may_not_see_the_booking(
        self, api: httpx.AsyncClient
    ) -> None:
        user, provider, stranger = await account(api), await account(api, "provider"), await account(api)
        start, end = future_slot()
        created = await api.post(
            "/v1/bookings", json={"providerId": provider.id, "startTime": start, "endTime": end}, headers=user.headers
        )
        path = created.headers["Location"]
        for n in range(3):
            await api.patch(path, json={"notes": f"edit {n}"}, headers=user.headers)

        versions, url = [], f"{path}/history?limit=1"
        while url:
            answer = await api.get(url, headers=provider.headers)
            assert answer.status_code == 200, answer.text
            versions += [e["version"] for e in answer.json()["items"]]
            link = answer.headers.get("Link")
            assert (link is None) == (answer.json()["nextCursor"] is None)
            url = link.split(">", 1)[0].lstrip("<") if link else ""
        assert versions == [1, 2, 3, 4]

        hidden = await api.get(f"{path}/history", headers=stranger.headers)
        assert (hidden.status_code, hidden.json()["type"]) == (404, "/problems/booking-not-found")
