"""Models of the registry app (added as its issue lands)."""
