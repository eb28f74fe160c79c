"""``GET /console`` and the two files it loads, kept out of the OpenAPI schema: they are a page, not the API.

Each file has its own route rather than a static-files mount, so nothing else on disk can be asked for and the
access log and metrics name each request by its route.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

STATIC = Path(__file__).parent / "static"

# Revalidate on every load, so a new page never runs an old script after an upgrade.
CACHING = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
# The access token lives in page memory: only our own script may run, and only our own origin is reachable.
PAGE_HEADERS = {
    **CACHING,
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(prefix="/console", include_in_schema=False)


@router.get("")
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=PAGE_HEADERS)


@router.get("/static/console.js")
async def script() -> FileResponse:
    return FileResponse(STATIC / "console.js", media_type="text/javascript", headers=CACHING)


@router.get("/static/console.css")
async def stylesheet() -> FileResponse:
    return FileResponse(STATIC / "console.css", media_type="text/css", headers=CACHING)
