"""Bookings as iCalendar (RFC 5545): the invites mail carries, and the feeds calendar apps subscribe to."""
