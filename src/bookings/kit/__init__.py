"""Small pieces shared by several domains, one subject per module."""
