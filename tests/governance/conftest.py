"""Fixtures the project-level tests share."""

from __future__ import annotations

from typing import Any

import pytest

from accounts import services as accounts


@pytest.fixture
def root(make_user: Any) -> Any:
    """A platform administrator (the administrator role with no tenant)."""
    user = make_user("root")
    accounts.role_grant(user=user, role="administrator", tenant=None, actor=None)
    return user
