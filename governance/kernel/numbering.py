"""Yearly numbers that never repeat: ``CR-2026-0007`` (changes), ``WV-2026-0003`` (waivers)."""

from __future__ import annotations

from typing import Any

from django.db import models


def next_number(counter_model: type[models.Model], year: int) -> int:
    """Hand out the next number of ``year`` from a counter table (``year`` primary key,
    ``last``), locking its row so two transactions never get the same number."""
    manager: Any = counter_model._default_manager
    counter, _ = manager.get_or_create(year=year)
    counter = manager.select_for_update().get(pk=counter.pk)
    counter.last += 1
    counter.save(update_fields=["last"])
    return int(counter.last)


def format_number(prefix: str, year: int, number: int) -> str:
    """How people read a yearly number: ``CR-2026-0007``."""
    return f"{prefix}-{year}-{number:04d}"
