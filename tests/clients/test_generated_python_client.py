"""The live document through tools nobody here wrote, pinned in the dev group: what an integrator would run.

openapi-spec-validator must accept it; openapi-python-client must generate from it without one warning, under the
config in ``clients/`` (its package name must not be the SDK's); the generated package alone must take a booking
through its life against the live server, cancel without a body included; and openapi-core, with the problem
deserializer the README shows, must find real exchanges, errors included, valid against it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests  # openapi-core's adapters read requests' objects (a dev dependency already, via schemathesis)
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_core.validation.response.exceptions import InvalidData
from openapi_spec_validator import validate

from tests.conftest import Service

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "clients" / "openapi-python-client.yaml"
SCRIPT = Path(__file__).parent / "scripts" / "generated_lifecycle.py"
BIN = Path(sys.executable).parent  # the project's environment: openapi-python-client, and ruff for its post-hooks


class TestOpenAPISpecValidator:
    def test_the_document_is_valid_openapi(self, live_document: dict[str, Any]) -> None:
        validate(live_document)  # raises OpenAPIValidationError, naming the place, if not


@pytest.fixture(scope="module")
def generated(live_document: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project openapi-python-client generates from the live document (``--fail-on-warning``)."""
    work = tmp_path_factory.mktemp("openapi-python-client")
    (work / "openapi.json").write_text(json.dumps(live_document))
    result = subprocess.run(
        [
            str(BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(work / "openapi.json"),
            "--config",
            str(CONFIG),
            "--output-path",
            str(work / "client"),
            "--fail-on-warning",
        ],
        cwd=work,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"openapi-python-client:\n{result.stdout}\n{result.stderr}"
    assert "warning" not in (result.stdout + result.stderr).lower(), result.stdout + result.stderr
    return work / "client"


class TestOpenAPIPythonClient:
    def test_the_generated_package_is_not_named_like_the_sdk(self, generated: Path) -> None:
        assert (generated / "bookings_api_client" / "__init__.py").is_file()
        assert 'name = "bookings-api-client"' in (generated / "pyproject.toml").read_text()
        assert not (generated / "bookings_client").exists()

    def test_the_generated_types_carry_no_made_up_titles_or_noise_names(self, generated: Path) -> None:
        models = {path.stem for path in (generated / "bookings_api_client" / "models").glob("*.py")}
        assert {"registration_role", "metrics_snapshot"} <= models
        assert not {"register_in_role", "get_metrics_response_getmetrics"} & models
        booking = (generated / "bookings_api_client" / "models" / "booking_out.py").read_text()
        assert "Userid" not in booking
        assert "cancel_reason: None | str\n" in booking  # required: no `| Unset`
        problem = (generated / "bookings_api_client" / "models" / "problem.py").read_text()
        assert "detail: str | Unset = UNSET" in problem  # absent or a string, never None

    def test_the_generated_package_alone_books_reschedules_and_cancels_without_a_body(
        self, generated: Path, live_service: Service
    ) -> None:
        result = subprocess.run(
            [sys.executable, str(SCRIPT), live_service.url],
            env={**os.environ, "PYTHONPATH": str(generated)},
            cwd=generated,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
        report = json.loads(result.stdout)

        assert report["modules"] == [], "the script must use the generated package only, not the service or SDK"
        assert report["token_type"] == "Bearer"
        assert report["created"] == {
            "status": 201,
            "etag": '"1"',
            "request_id": True,
            "cancel_reason": None,
            "booking_status": "confirmed",
        }
        assert len(report["listed"]) == 1
        assert report["rescheduled"]["version"] == 2
        assert report["conflict"] == {"status": 409, "type": "/problems/slot-taken", "request_id": True}
        assert report["invalid"] == {"status": 422, "fields": ["endTime"]}
        assert report["cancelled"] == {"status": "cancelled", "reason": None}
        assert report["cancelled_again"] == {"version": 3, "reason": None}, "cancel is safe to repeat"
        assert report["fetched"] == "cancelled"
        assert report["history"] == ["created", "rescheduled", "cancelled"]


class TestOpenAPICore:
    """The README's note: openapi-core reads `application/problem+json` once it is given a deserializer."""

    def test_real_exchanges_errors_included_match_the_document(
        self, live_document: dict[str, Any], live_service: Service
    ) -> None:
        config = Config(extra_media_type_deserializers={"application/problem+json": json.loads})
        openapi = OpenAPI.from_dict(live_document, config=config)
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=25)
        credentials = {"email": f"core-{os.urandom(4).hex()}@example.com", "password": "Correct-Horse-9!"}
        with requests.Session() as session:

            def send(method: str, path: str, **kwargs: Any) -> requests.Response:
                return session.request(method, f"{live_service.url}{path}", timeout=10, **kwargs)

            account = {**credentials, "name": "Core", "role": "provider"}
            exchanges = [
                send("POST", "/v1/auth/register", json=account),
                send("POST", "/v1/auth/register", json=account),
            ]
            exchanges.append(send("POST", "/v1/auth/login", json={"email": credentials["email"]}))
            exchanges.append(login := send("POST", "/v1/auth/login", json=credentials))
            auth = {"Authorization": f"Bearer {login.json()['accessToken']}"}
            exchanges.append(send("GET", "/v1/users/me", headers=auth))
            exchanges.append(send("GET", "/v1/bookings?type=upcoming", headers=auth))
            exchanges.append(send("GET", f"/v1/bookings/{uuid.uuid4()}", headers=auth))
            exchanges.append(send("GET", "/v1/bookings"))
            slot = {"startTime": start.isoformat(), "endTime": (start + timedelta(hours=1)).isoformat()}
            exchanges.append(send("POST", "/v1/bookings", json=slot, headers=auth))

        assert [response.status_code for response in exchanges] == [201, 409, 422, 200, 200, 200, 404, 401, 422]
        for response in exchanges:
            openapi.validate_response(RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response))

    def test_without_the_deserializer_a_problem_cannot_be_read(
        self, live_document: dict[str, Any], live_service: Service
    ) -> None:
        """Why the README mentions it: without it the body stays bytes, "not valid for schema of type object"."""
        response = requests.get(f"{live_service.url}/v1/bookings", timeout=10)
        assert response.status_code == 401
        with pytest.raises(InvalidData, match="not valid for schema of type object"):
            OpenAPI.from_dict(live_document).validate_response(
                RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response)
            )
