"""Reviews: change requests, approvals, checks and promotion."""
