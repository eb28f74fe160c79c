"""Who is calling: passwords, access tokens from a rotating key ring, refresh-token families."""
