"""Users, tenants, per-tenant roles and personal API tokens."""
