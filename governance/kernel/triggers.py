"""PostgreSQL triggers that make a table append-only (django-pgtrigger), shared by every app.

``Protect`` refuses UPDATE and DELETE row by row, but ``TRUNCATE`` fires no row
trigger, and ``TRUNCATE other_table CASCADE`` empties every table that points at
it. A statement-level ``BEFORE TRUNCATE`` trigger closes that: PostgreSQL fires it
for each table a TRUNCATE reaches, cascaded ones included, so truncating any table
that references a protected one fails as well.
"""

from __future__ import annotations

import pgtrigger


def no_truncate(name: str) -> pgtrigger.Trigger:
    """Refuse ``TRUNCATE`` of the table, directly or through ``CASCADE``."""
    return pgtrigger.Trigger(
        name=name,
        when=pgtrigger.Before,
        operation=pgtrigger.Truncate,
        level=pgtrigger.Statement,
        func="RAISE EXCEPTION 'pgtrigger: Cannot truncate the append-only table %', TG_TABLE_NAME; RETURN NULL;",
    )


def immutable(prefix: str) -> list[pgtrigger.Trigger]:
    """A table whose rows are never changed nor removed: UPDATE, DELETE and TRUNCATE refused."""
    return [
        pgtrigger.Protect(
            name=f"{prefix}_immutable", operation=pgtrigger.Update | pgtrigger.Delete
        ),
        no_truncate(f"{prefix}_no_truncate"),
    ]


def undeletable(prefix: str) -> list[pgtrigger.Trigger]:
    """A table whose rows are stamped later (voided, revoked, finished) but never removed:
    DELETE and TRUNCATE refused, UPDATE allowed."""
    return [
        pgtrigger.Protect(name=f"{prefix}_no_delete", operation=pgtrigger.Delete),
        no_truncate(f"{prefix}_no_truncate"),
    ]
