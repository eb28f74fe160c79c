"""The authenticated caller of a request (defined in ``bookings.identity``, below every domain)."""

from __future__ import annotations

from bookings.identity import Principal

__all__ = ["Principal"]
