"""Calendar feed shapes at the edge."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from bookings.kit.schemas import ApiModel


class CalendarFeedOut(ApiModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://bookings.example.com/v1/calendar-feeds/q3Zb0m9cVd6kU1w8HwQ2yT5rXo4nLe7aPs0fJi3Gk2M.ics"
                }
            ]
        }
    )

    url: str = Field(
        description="Subscribe to it in a calendar app. Anyone holding it can read the feed: asking for a new one "
        "revokes it."
    )
