"""``python -m bookings`` runs the CLI."""

from bookings.cli import main

main()
