"""People: users who book, providers who are booked, admins who see everything."""
