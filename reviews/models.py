"""Models of the reviews app (added as its issue lands)."""
