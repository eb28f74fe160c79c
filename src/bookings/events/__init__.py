"""Booking events: the outbox written with each change, the relay that publishes it, the bus, the WebSocket hub."""
