"""Every status a server returned must be one its OpenAPI document lists for that operation.

The service's access log has one line per request with its route template and status; after a test run, each
(method, route, status) seen there is looked up in ``/openapi.json``.
"""

from __future__ import annotations

import json
from typing import Any

# Not operations of the OpenAPI document: the WebSocket, the console's static files, and paths no route matched.
UNDOCUMENTED_ROUTES = {"/ws", "<unmatched>"}


def undocumented_statuses(log: str, openapi: dict[str, Any]) -> set[tuple[str, str, int]]:
    seen: set[tuple[str, str, int]] = set()
    for line in log.split("\n"):  # not splitlines(): a logged path may hold \x1c-\x1e or \u2028
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if entry.get("event") == "request":
            seen.add((entry["method"], entry["route"], int(entry["status"])))
    missing = set()
    for method, route, status in seen:
        if route in UNDOCUMENTED_ROUTES or route.startswith("/console"):
            continue
        operation = openapi["paths"].get(route, {}).get(method.lower())
        if operation is None:
            if status != 405:  # a method the path does not have: there is no operation to document it on
                missing.add((method, route, status))
            continue
        listed = operation.get("responses", {})
        if str(status) not in listed and "default" not in listed:
            missing.add((method, route, status))
    return missing
