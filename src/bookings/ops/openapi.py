"""``python -m bookings.ops.openapi``: this code's OpenAPI document on stdout, without starting a server.

What ``GET /openapi.json`` serves, for generators run from a checkout (``make typescript-types``). The app is
built on a throwaway SQLite path and key, which the document does not depend on, and never started.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from bookings.app import create_app
from bookings.config import Settings, generate_key_ring_entry


def document() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(
            database_url=f"sqlite:///{Path(scratch) / 'bookings.db'}", jwt_keys=generate_key_ring_entry()
        )
        openapi: dict[str, Any] = create_app(settings).openapi()
        return openapi


if __name__ == "__main__":
    json.dump(document(), sys.stdout, indent=2)
    sys.stdout.write("\n")
