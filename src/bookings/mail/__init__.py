"""Mail about bookings: confirmations, changes, cancellations and reminders, each with a calendar invite.

Off unless ``BOOKINGS_SMTP_URL`` is set. Every message is a job (kind ``mail``), added by the relay in the
transaction that numbers the booking's event, so it exists exactly when the change committed, and is retried,
dead-lettered and replayed like a webhook delivery.
"""
