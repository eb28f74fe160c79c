"""Pagination: page numbers (``page``/``limit``) or keyset cursors (``cursor``/``limit``), in one envelope.

Every page answers ``nextCursor`` (``null`` at the end), ``hasMore`` and a ``Link: <...>; rel="next"`` header.
``?cursor=`` walks on by keyset: after the last item's sort key, so an insert or a removal elsewhere in the list
neither repeats nor skips an item, and no ``OFFSET`` or count is paid (``page`` and ``total`` are ``null``).

A cursor is opaque: base64url JSON of the query it belongs to (a digest of the path and its filters) and the last
item's sort key, then an HMAC of that with a key derived from the deployment's signing keys (``Cursors``). A
tampered cursor, one from another query, or one combined with ``page`` is ``400 /problems/invalid-cursor``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from sqlalchemy import Select, literal, tuple_

from bookings.errors import BookingsError

MAX_LIMIT = 100
MAX_PAGE = 1_000_000
MAX_CURSOR = 512
_NOT_FILTERS = frozenset({"page", "limit", "cursor"})


class InvalidCursor(BookingsError):
    status, title, slug = 400, "Invalid cursor", "invalid-cursor"


Position = tuple[Any, ...]
"""An item's sort key, as the list orders by it: ``(start_time, id)``, ``(version,)``."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json(value: Any) -> Any:
    if isinstance(value, date):  # a datetime too
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


class Cursors:
    """Signs and reads cursors; any of ``secrets`` verifies, the first signs (so a key rotation keeps walks going)."""

    def __init__(self, secrets: Sequence[bytes]) -> None:
        self._keys = [hmac.new(secret, b"bookings cursors", hashlib.sha256).digest() for secret in secrets]

    def _mac(self, key: bytes, payload: str) -> str:
        return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest()[:16])

    def encode(self, scope: str, position: Position) -> str:
        payload = _b64(json.dumps([scope, [_json(v) for v in position]], separators=(",", ":")).encode())
        return f"{payload}.{self._mac(self._keys[0], payload)}"

    def decode(self, scope: str, token: str) -> list[Any]:
        payload, _, mac = token.partition(".")
        if not any(hmac.compare_digest(mac, self._mac(key, payload)) for key in self._keys):
            raise InvalidCursor("The cursor is not one this service gave out.")
        try:
            bound, position = json.loads(_unb64(payload))
        except (ValueError, binascii.Error, TypeError) as exc:
            raise InvalidCursor("The cursor is not one this service gave out.") from exc
        if bound != scope or not isinstance(position, list):
            raise InvalidCursor("The cursor belongs to another query; start again without it.")
        return position


def _typed(values: list[Any], types: Sequence[type]) -> Position:
    """A cursor's JSON values back to the sort key's Python types (a signed cursor has them right)."""
    if len(values) != len(types):
        raise InvalidCursor("The cursor belongs to another query; start again without it.")
    try:
        return tuple(
            t.fromisoformat(v) if t in (datetime, date) else uuid.UUID(v) if t is uuid.UUID else t(v)
            for v, t in zip(values, types, strict=True)
        )
    except (ValueError, TypeError) as exc:
        raise InvalidCursor("The cursor belongs to another query; start again without it.") from exc


@dataclass(frozen=True, slots=True)
class PageRequest:
    page: int | None  # None when walking by cursor
    limit: int
    cursor: str | None = None
    scope: str = ""  # the path and its filters: what a cursor is bound to
    cursors: Cursors | None = None
    base: str = ""  # the request's path and filters, for ``Link``

    @property
    def offset(self) -> int:
        return 0 if self.page is None else (self.page - 1) * self.limit

    @property
    def fetch(self) -> int:
        """Rows to read: one more than a page, to know whether another follows."""
        return self.limit + 1

    def after(self, *types: type) -> Position | None:
        """The sort key the cursor continues after, typed as the list's sort columns, or ``None`` without one."""
        if self.cursor is None or self.cursors is None:
            return None
        return _typed(self.cursors.decode(self.scope, self.cursor), types)

    def next_cursor(self, position: Position) -> str:
        assert self.cursors is not None, "a PageRequest built without Cursors cannot give out cursors"
        return self.cursors.encode(self.scope, position)

    def link(self, next_cursor: str) -> str:
        separator = "&" if "?" in self.base else "?"
        return f'<{self.base}{separator}{urlencode({"limit": self.limit, "cursor": next_cursor})}>; rel="next"'


def _scope(request: Request) -> tuple[str, str]:
    filters = sorted((k, v) for k, v in request.query_params.multi_items() if k not in _NOT_FILTERS)
    base = request.url.path + (f"?{urlencode(filters)}" if filters else "")
    return hashlib.sha256(base.encode()).hexdigest()[:16], base


async def page_request(
    request: Request,
    page: Annotated[int | None, Query(ge=1, le=MAX_PAGE, description="1-based page number (default 1).")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page, 1 to 100.")] = 20,
    cursor: Annotated[
        str | None,
        Query(
            max_length=MAX_CURSOR,
            description="`nextCursor` of the previous page: walks on by keyset (no `page`, no `total`).",
        ),
    ] = None,
) -> PageRequest:
    if cursor is not None and page is not None:
        raise InvalidCursor("Give `cursor` or `page`, not both.")
    scope, base = _scope(request)
    cursors: Cursors | None = getattr(request.app.state, "cursors", None)
    return PageRequest(
        page=None if cursor is not None else page or 1,
        limit=limit,
        cursor=cursor,
        scope=scope,
        cursors=cursors,
        base=base,
    )


Paging = Annotated[PageRequest, Depends(page_request)]


T = TypeVar("T")
R = TypeVar("R")


def _page_examples(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """A page of ``Page[Item]`` shows ``Item``'s first example (when it has one). Not the last page: FastAPI drops
    the nulls of examples from the document, and ``nextCursor`` is required."""
    args = model.__pydantic_generic_metadata__["args"]
    item = args[0] if args else None
    extra = (
        item.model_config.get("json_schema_extra") if isinstance(item, type) and issubclass(item, BaseModel) else None
    )
    if isinstance(extra, dict) and isinstance(examples := extra.get("examples"), list) and examples:
        schema["examples"] = [
            {
                "items": examples[:1],
                "page": 1,
                "limit": 1,
                "total": 2,
                "nextCursor": "WyI4ZjE0ZTQ1ZmNlZWE0NjdhIixbIjIwMzAtMDUtMDFUMDk6MDA6MDBaIl1d.q2hX0m9yYkVxZmJv",
                "hasMore": True,
            }
        ]


class Page(BaseModel, Generic[T]):
    model_config = ConfigDict(json_schema_extra=_page_examples, alias_generator=to_camel, populate_by_name=True)

    items: list[T]
    page: int | None = Field(description="The page number; `null` when walking by cursor.")
    limit: int
    total: int | None = Field(description="Items in the whole list; `null` when walking by cursor (never counted).")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; `null` on the last page.")
    has_more: bool


def paged(
    rows: Sequence[R], total: int | None, paging: PageRequest, item: Callable[[R], T], position: Callable[[R], Position]
) -> Page[T]:
    """The envelope of a page read with ``limit = paging.fetch`` (one row more than shown, if there is one)."""
    shown = rows[: paging.limit]
    has_more = len(rows) > paging.limit
    next_cursor = paging.next_cursor(position(shown[-1])) if has_more and paging.cursors is not None else None
    return Page[T](
        items=[item(row) for row in shown],
        page=paging.page,
        limit=paging.limit,
        total=None if paging.page is None else total,
        next_cursor=next_cursor,
        has_more=has_more,
    )


def link_next(response: Response, paging: PageRequest, page: Page[Any]) -> None:
    if page.next_cursor is not None:
        response.headers["Link"] = paging.link(page.next_cursor)


LINK = {
    "Link": {
        "description": 'The next page, `<...>; rel="next"` (RFC 8288), when there is one.',
        "schema": {"type": "string"},
    }
}


def keyset(query: Select[Any], paging: PageRequest, *columns: Any, descending: bool = False) -> Select[Any]:
    """``query`` ordered by ``columns`` (a unique key, last the id), after the cursor's position if there is one,
    one page and one row more (``paged`` cuts it)."""
    after = paging.after(*(column.type.python_type for column in columns))
    query = query.order_by(*(column.desc() if descending else column.asc() for column in columns))
    if after is not None:
        key = tuple_(*columns)
        bound = tuple_(*(literal(value, column.type) for value, column in zip(after, columns, strict=True)))
        query = query.where(key < bound if descending else key > bound)
    return query.offset(paging.offset).limit(paging.fetch)


CURSOR_EXAMPLE = InvalidCursor("The cursor belongs to another query; start again without it.")
