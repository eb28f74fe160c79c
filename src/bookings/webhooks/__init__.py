"""Webhooks: admins register endpoints; every event of the chosen types is POSTed there, signed, with retries."""
