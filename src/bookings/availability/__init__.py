"""Provider availability: weekly hours, date overrides, and the slot search that bookings obey."""
