"""The waivers' REST endpoints (mounted under /api/v1/ by the project's routes)."""
