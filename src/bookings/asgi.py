"""The ASGI entry point for ``uvicorn bookings.asgi:app`` (settings from the environment)."""

from bookings.app import create_app

app = create_app()
