"""Page-number pagination: the query parameters and the page envelope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict

MAX_LIMIT = 100
MAX_PAGE = 1_000_000


@dataclass(frozen=True, slots=True)
class PageRequest:
    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


async def page_request(
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="1-based page number.")] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page, 1 to 100.")] = 20,
) -> PageRequest:
    return PageRequest(page=page, limit=limit)


Paging = Annotated[PageRequest, Depends(page_request)]


T = TypeVar("T")


def _page_examples(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """A page of ``Page[Item]`` shows ``Item``'s first example (when it has one)."""
    args = model.__pydantic_generic_metadata__["args"]
    item = args[0] if args else None
    extra = (
        item.model_config.get("json_schema_extra") if isinstance(item, type) and issubclass(item, BaseModel) else None
    )
    if isinstance(extra, dict) and isinstance(examples := extra.get("examples"), list) and examples:
        schema["examples"] = [{"items": examples[:1], "page": 1, "limit": 20, "total": 1}]


class Page(BaseModel, Generic[T]):
    model_config = ConfigDict(json_schema_extra=_page_examples)

    items: list[T]
    page: int
    limit: int
    total: int
