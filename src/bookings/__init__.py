"""Bookings: a service that lets users book time with providers, and never double-books one."""

__version__ = "0.1.0"
