"""App config for registry."""

from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
