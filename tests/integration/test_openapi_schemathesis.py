"""The running server keeps its own OpenAPI contract, whatever schemathesis throws at it.

Every operation in ``/openapi.json`` is fuzzed with positive and negative cases, in turn as a user, a provider
and an admin (each with a real access token, sent even where the operation needs none), against a database
seeded with a provider and bookings; some generated requests are steered onto those real rows and onto valid
times and credentials (see ``_steer``), so the success paths run too, not only the refusals. Each response
must pass these checks:

- ``not_a_server_error``: no 5xx, ever;
- ``status_code_conformance``: the status is one the operation documents;
- ``content_type_conformance``: the media type is one documented for that status;
- ``response_schema_conformance``: the body validates against the documented schema;
- ``problem_document`` (ours): every 4xx is ``application/problem+json`` whose ``status`` is the HTTP status.

The run also fails if it never reached the outcomes in ``MUST_REACH`` (a broken login would otherwise turn
every case into a documented 401 and pass). Failures are collected, not raised, and reported together: per
operation and check, the roles affected and one request that reproduces it.

Runs on both backends (``service`` is parametrized), ``EXAMPLES_PER_OPERATION`` (50) cases per operation and
role, about 15 s per backend.

Determinism: by default Hypothesis is *derandomized* (``derandomize=True``: the same cases on every run, so CI
is stable and a failure reproduces). Set ``BOOKINGS_FUZZ_SEED`` to an integer to explore other inputs with that
seed, or to ``random`` for a fresh seed each run (named in the failure message, so it can be replayed);
``BOOKINGS_FUZZ_EXAMPLES`` changes the number of cases, e.g. for a longer local run.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis import checks as schemathesis_checks
from schemathesis.errors import FailureGroup

from tests.conftest import Service
from tests.support.api import PASSWORD, Account, account, book, future_slot

EXAMPLES_PER_OPERATION = int(os.environ.get("BOOKINGS_FUZZ_EXAMPLES", "30"))  # the suite stays under 10 min
PROBLEM_MEDIA_TYPE = "application/problem+json"
MUST_REACH = [
    ("POST /v1/auth/register", 201),
    ("POST /v1/auth/login", 200),
    ("GET /v1/users/me", 200),
    ("POST /v1/bookings", 201),
    ("GET /v1/bookings", 200),
    ("GET /v1/bookings/{bookingId}", 200),
    ("PATCH /v1/bookings/{bookingId}", 200),
    ("POST /v1/bookings/{bookingId}/cancel", 200),
]


def problem_document(ctx: Any, response: schemathesis.Response, case: Case) -> bool | None:
    """Design §2.6: every error is an RFC 9457 problem document (checked here for 4xx; 5xx fail on their own)."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith(PROBLEM_MEDIA_TYPE), f"{response.status_code} came as {content_type!r}"
    body = response.json()
    assert isinstance(body, dict), "the problem document is not a JSON object"
    assert body.get("status") == response.status_code, f"problem status {body.get('status')} != HTTP status"
    assert body.get("type"), "the problem document has no `type`"
    assert body.get("title"), "the problem document has no `title`"
    return None


CHECKS = [
    schemathesis_checks.not_a_server_error,
    schemathesis_checks.status_code_conformance,
    schemathesis_checks.content_type_conformance,
    schemathesis_checks.response_schema_conformance,
    problem_document,
]


@dataclass
class Seed:
    """What the database holds before fuzzing: real ids for generated paths and bodies to hit."""

    provider_id: str
    login_email: str
    callers: dict[str, Account]
    live: dict[str, str]  # per role, a confirmed booking that role may act on (one role's cancel spares the next)
    others: list[str]  # a booking the user may not see, and a cancelled one


@dataclass
class Findings:
    """What broke, keyed by (operation, what), with the roles it broke for and one request that shows it."""

    seed_note: str
    failures: dict[tuple[str, str], tuple[set[str], str]] = field(default_factory=dict)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)

    def record(self, role: str, operation: str, title: str, detail: str) -> None:
        roles, _ = self.failures.setdefault((operation, title), (set(), detail))
        roles.add(role)

    def report(self) -> str:
        cases = sum(self.statuses.values())
        lines = [f"schemathesis found {len(self.failures)} distinct problem(s) in {cases} cases ({self.seed_note}):"]
        for (operation, title), (roles, detail) in sorted(self.failures.items()):
            lines.append(f"\n--- {operation}: {title} (as {', '.join(sorted(roles))})\n{detail}")
        return "\n".join(lines)

    def unreached(self) -> list[str]:
        """Outcomes the run must reach to mean anything (all 401s, say, would conform and prove nothing)."""
        return [f"{operation} -> {status}" for operation, status in MUST_REACH if not self.statuses[operation, status]]


def _hypothesis_settings() -> tuple[hypothesis.settings, int | None, Findings]:
    """Derandomized unless ``BOOKINGS_FUZZ_SEED`` asks for a seed (see the module docstring)."""
    common: dict[str, Any] = {
        "max_examples": EXAMPLES_PER_OPERATION,
        "deadline": None,
        "database": None,  # no example database: what runs is decided by the seed alone
        "phases": [Phase.explicit, Phase.generate],  # failures are collected, not raised, so nothing to shrink
        # A real server over HTTP is slow by Hypothesis' standards, and bodies can be big; neither is a bug.
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        "print_blob": False,
    }
    wanted = os.environ.get("BOOKINGS_FUZZ_SEED", "").strip()
    if not wanted:
        return hypothesis.settings(derandomize=True, **common), None, Findings("derandomized")
    seed = random.randrange(2**32) if wanted == "random" else int(wanted)
    return hypothesis.settings(derandomize=False, **common), seed, Findings(f"BOOKINGS_FUZZ_SEED={seed}")


# Appended to the strings of some bodies: what random text rarely holds but real clients send.
NASTY_SUFFIXES = ["\x00", "a\x00b", "\ud800", "\u202e\U0001f642", "\t\r\n", "' OR '1'='1", "%00%s", "x" * 1200]
STEERING = ["as generated", "real", "real, free slot"]


def _steer(case: Case, how: str, nasty: str | None, seed: Seed, role: str) -> Case:
    """Steer some generated requests past the checks random data never passes, so the deeper paths run too.

    ``as generated`` leaves the request alone. ``real`` aims a booking path at the caller's live booking, puts
    the seeded provider in ``providerId``, the seeded user's credentials in a login, and a fresh email with a
    valid password in a registration (its 201 path). ``real, free slot`` also gives any body with times a free
    future slot (the create and reschedule paths), drops a made-up ``If-Match``, and registers the seeded email
    again (the 409 path). Then
    ``nasty``, if drawn, is appended to every remaining string (notes, names, emails, passwords, tokens).
    """
    if how != "as generated" and "bookingId" in (case.path_parameters or {}):
        case.path_parameters["bookingId"] = seed.live[role]
    if how == "real, free slot" and case.headers:
        case.headers.pop("If-Match", None)  # a made-up tag is a 412; the other modes keep it, this one aims at 200
    body = case.body
    if not isinstance(body, dict):
        return case
    if how != "as generated":
        slot = how == "real, free slot"
        if "providerId" in body:
            body["providerId"] = seed.provider_id
        if {"email", "password", "name"} <= body.keys():
            body["email"] = seed.login_email if slot else f"fuzz-{secrets.token_hex(6)}@example.com"
            body["password"] = PASSWORD
        elif {"email", "password"} <= body.keys():
            body["email"], body["password"] = seed.login_email, PASSWORD
        if slot and ("startTime" in body or "endTime" in body):
            body["startTime"], body["endTime"] = future_slot()
    if nasty is not None:
        for key, value in body.items():
            if isinstance(value, str) and key not in ("providerId", "startTime", "endTime"):
                body[key] = value + nasty
    return case


def _strategy(operation: Any, seed: Seed) -> st.SearchStrategy[tuple[Case, str, str | None]]:
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    strategies = [operation.as_strategy(generation_mode=mode) for mode in modes]
    if "{bookingId}" in operation.path:
        strategies += [
            operation.as_strategy(generation_mode=mode, path_parameters={"bookingId": booking_id})
            for mode in modes
            for booking_id in seed.others
        ]
    nasty = st.one_of(st.none(), st.sampled_from(NASTY_SUFFIXES))
    return st.tuples(st.one_of(strategies), st.sampled_from(STEERING), nasty)


def _fuzz(base_url: str, seed: Seed) -> Findings:
    """Run every operation as every role; one that takes no token (no ``security``: health, login, a calendar
    feed) answers every caller alike, so it runs as the first role only."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    settings, hypothesis_seed, findings = _hypothesis_settings()
    first = next(iter(seed.callers))
    for role, caller in seed.callers.items():
        headers = {"Authorization": f"Bearer {caller.token}"}
        with requests.Session() as session:
            for operation in operations:
                if role != first and not operation.definition.raw.get("security"):
                    continue
                _fuzz_operation(operation, role, headers, session, base_url, seed, settings, hypothesis_seed, findings)
    return findings


def _fuzz_operation(
    operation: Any,
    role: str,
    headers: dict[str, str],
    session: requests.Session,
    base_url: str,
    seed: Seed,
    settings: hypothesis.settings,
    hypothesis_seed: int | None,
    findings: Findings,
) -> None:
    @settings
    @given(drawn=_strategy(operation, seed))
    def run(drawn: tuple[Case, str, str | None]) -> None:
        case = _steer(*drawn, seed, role)
        try:
            response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
        except requests.RequestException as exc:
            findings.record(role, operation.label, f"transport error {type(exc).__name__}", str(exc))
            return
        findings.statuses[operation.label, response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            curl = case.as_curl_command(headers=headers)
            for failure in group.exceptions:
                message = f"{failure.message}\n" if failure.message else ""
                detail = f"{message}Response: {response.status_code} {response.text[:500]}\n{curl}"
                findings.record(role, operation.label, failure.title, detail)

    if hypothesis_seed is not None:
        run = hypothesis.seed(hypothesis_seed)(run)
    run()


async def _seed(api: httpx.AsyncClient, admin: Account) -> Seed:
    user, other_user, provider = await account(api), await account(api), await account(api, "provider")
    callers = {"user": user, "provider": provider, "admin": admin}
    live = {role: await book(api, user, provider, future_slot(), notes=f"for the {role}") for role in callers}
    theirs = await book(api, other_user, provider, future_slot())
    cancelled = await book(api, user, provider, future_slot())
    for response in (*live.values(), theirs, cancelled):
        assert response.status_code == 201, response.text
    await api.post(f"/v1/bookings/{cancelled.json()['id']}/cancel", json={"reason": "seeded"}, headers=user.headers)
    return Seed(
        provider_id=provider.id,
        login_email=other_user.email,
        callers=callers,
        live={role: response.json()["id"] for role, response in live.items()},
        others=[theirs.json()["id"], cancelled.json()["id"]],
    )


class TestOpenApiContract:
    async def test_every_operation_keeps_its_documented_contract_for_every_role(
        self, service: Service, api: httpx.AsyncClient, admin: Account
    ) -> None:
        seed = await _seed(api, admin)
        findings = await asyncio.to_thread(_fuzz, service.url, seed)
        if findings.failures:
            pytest.fail(findings.report(), pytrace=False)
        if unreached := findings.unreached():
            pytest.fail(f"the fuzzing never reached {unreached} ({findings.seed_note}); seen: {findings.statuses}")
