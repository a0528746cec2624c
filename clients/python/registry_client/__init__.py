"""Client for the governance registry runtime."""
