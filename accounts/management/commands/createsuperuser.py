"""``manage.py createsuperuser``, Django's command, writing through the account services.

Prompts, ``--noinput`` and the ``DJANGO_SUPERUSER_*`` variables work as in
Django; the user is then made by ``user_create`` and raised by
``user_set_staff`` and ``user_set_superuser`` in one transaction, as the system,
so the log holds ``user.created``, ``user.staff_changed`` and
``user.superuser_changed`` like any other way of making an administrator.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.management.commands import createsuperuser
from django.core.management.base import CommandError
from django.db import transaction

from accounts import services
from accounts.models import User
from governance.kernel.errors import DomainError
from governance.kernel.events.context import channel

REASON = "created with manage.py createsuperuser"


class _ServiceManager:
    """The user manager as Django's command sees it, except that creation goes through services."""

    def __init__(self, manager: Any) -> None:
        self._manager = manager

    def __getattr__(self, name: str) -> Any:
        return getattr(self._manager, name)

    def db_manager(self, *args: Any, **kwargs: Any) -> _ServiceManager:
        return _ServiceManager(self._manager.db_manager(*args, **kwargs))

    def create_superuser(
        self, username: str, email: str | None = None, password: str | None = None, **extra: Any
    ) -> User:
        if extra:
            raise CommandError(f"unexpected fields: {', '.join(sorted(extra))}")
        try:
            with transaction.atomic(using=self._manager.db), channel("cli"):
                user = services.user_create(
                    username=username,
                    email=email or "",
                    password=password,
                    actor=None,
                    validate=False,  # Django's command validated it (or the operator overrode)
                )
                services.user_set_staff(user=user, is_staff=True, actor=None, reason=REASON)
                services.user_set_superuser(user=user, is_superuser=True, actor=None, reason=REASON)
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        return user


class _UserModel:
    """``User`` for Django's command: every attribute as is, but the manager above."""

    def __init__(self, model: type[User]) -> None:
        self._model = model
        self._default_manager = _ServiceManager(model._default_manager)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def __call__(self, **kwargs: Any) -> User:
        return self._model(**kwargs)


class Command(createsuperuser.Command):
    help = "Create a superuser (through the account services: three events in the log)."

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.UserModel = _UserModel(User)  # type: ignore[assignment]
