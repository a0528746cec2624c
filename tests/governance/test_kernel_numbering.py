"""``governance.kernel.numbering``: yearly numbers that never repeat."""

from __future__ import annotations

import pytest

from governance.kernel.numbering import format_number, next_number
from reviews.models import ChangeCounter


@pytest.mark.django_db
def test_numbers_count_up_per_year_from_one():
    assert [next_number(ChangeCounter, 2026) for _ in range(3)] == [1, 2, 3]
    assert next_number(ChangeCounter, 2027) == 1
    assert next_number(ChangeCounter, 2026) == 4
    assert ChangeCounter.objects.get(year=2026).last == 4


@pytest.mark.django_db
def test_numbers_go_on_from_the_stored_counter():
    ChangeCounter.objects.create(year=2025, last=41)
    assert next_number(ChangeCounter, 2025) == 42


@pytest.mark.parametrize(
    ("prefix", "year", "number", "text"),
    [
        ("CR", 2026, 7, "CR-2026-0007"),
        ("WV", 2026, 3, "WV-2026-0003"),
        ("CR", 2026, 12345, "CR-2026-12345"),
    ],
)
def test_format_number(prefix: str, year: int, number: int, text: str):
    assert format_number(prefix, year, number) == text
