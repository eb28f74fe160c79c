"""Requests made once before the scenarios: a wrong setup fails loudly instead of as 32,000 errors, and the two
servers are shown to answer the same JSON to the same request."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.server import Account, check_request


async def check_create(url: str, account: Account, provider: str, start: datetime, slot: timedelta) -> None:
    """One booking at ``start`` (a slot no scenario uses): proves the body and the token."""
    body = {
        "providerId": provider,
        "startTime": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endTime": (start + slot).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    await check_request(url, "POST", "/v1/bookings", account.token, 201, body)


async def _get_json(url: str, path: str, token: str) -> Any:
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:
        response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
    response.raise_for_status()
    return response.json()


def _difference(ours: Any, plain: Any, where: str = "") -> str | None:
    """Where two JSON documents first differ, or None."""
    if isinstance(ours, dict) and isinstance(plain, dict):
        if ours.keys() != plain.keys():
            return f"{where or 'top'}: keys {sorted(ours.keys() ^ plain.keys())} in only one"
        found = (_difference(ours[k], plain[k], f"{where}.{k}") for k in ours)
        return next((d for d in found if d), None)
    if isinstance(ours, list) and isinstance(plain, list):
        if len(ours) != len(plain):
            return f"{where}: {len(ours)} vs {len(plain)} items"
        found = (_difference(a, b, f"{where}[{i}]") for i, (a, b) in enumerate(zip(ours, plain, strict=True)))
        return next((d for d in found if d), None)
    return None if ours == plain else f"{where}: {ours!r} vs {plain!r}"


async def same_json(urls: tuple[str, str], paths: Mapping[str, str], token: str) -> str:
    """GET each path (by label) from both servers with the same token and compare the documents (for the report's
    header)."""
    for path in paths.values():
        ours = await _get_json(urls[0], path, token)
        plain = await _get_json(urls[1], path, token)
        if (difference := _difference(ours, plain)) is not None:
            return f"its JSON DIFFERS from ours: GET {path} {difference}"
    return "same JSON as ours (" + ", ".join(paths) + ")"
