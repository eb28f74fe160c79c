"""Bookings: a user books a provider for a time slot, and no provider is ever double-booked."""
