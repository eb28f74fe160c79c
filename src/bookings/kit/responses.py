"""A response whose JSON was serialised once already (a cached read): sent as it is, never validated again.

A ``JSONResponse`` subclass so that OpenAPI documents the route's ``response_model`` for it.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse


class JSONBytes(JSONResponse):
    def render(self, content: Any) -> bytes:
        assert isinstance(content, bytes), "JSONBytes takes JSON already serialised"
        return content
