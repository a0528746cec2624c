"""App config for accounts: users, tenants, roles, tokens."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and access"

    def ready(self) -> None:
        from accounts import openapi  # noqa: F401  (registers the bearer scheme)
