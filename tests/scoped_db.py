"""Rows that every test of a module (or class) reads, written once instead of once per test.

``kept_for_the_scope`` opens a transaction around the whole scope, marked as a Django test
case marks its own (``_from_testcase``: the event log appends a service's events when the
service returns, as in any test, and a durable block may open inside it). Each test's own
transaction nests inside it as a savepoint, so what a test writes still vanishes after it,
and the shared rows vanish at the end of the scope. Only for non-transactional tests (a
transactional test empties the database and would take the shared rows with it).

    @pytest.fixture(scope="module")
    def seeded(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
        with kept_for_the_scope(django_db_blocker, seed) as printed:
            yield printed
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.db import transaction
from django.test import override_settings

from governance.kernel.events.context import channel

#: What tests/conftest.py's _fast_password_hasher gives each test (it is function-scoped, so
#: it is not in force yet when a wider fixture runs); a hash made otherwise would not verify.
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

T = TypeVar("T")


@contextmanager
def kept_for_the_scope(
    django_db_blocker: Any, build: Callable[[], T], using: str = "default"
) -> Iterator[T]:
    """Run ``build`` (which writes the shared rows) in the scope's transaction; give its result."""
    atomic = transaction.atomic(using=using)
    atomic._from_testcase = True  # type: ignore[attr-defined]
    with django_db_blocker.unblock():
        atomic.__enter__()
        try:
            with override_settings(PASSWORD_HASHERS=FAST_HASHERS), channel(""):
                value = build()
        except BaseException:
            transaction.set_rollback(True, using=using)
            atomic.__exit__(None, None, None)
            raise
    try:
        yield value
    finally:
        with django_db_blocker.unblock():
            transaction.set_rollback(True, using=using)
            atomic.__exit__(None, None, None)
