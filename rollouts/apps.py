"""App config for rollouts: runtime selection (applications, slots, pointers) and rollouts."""

from django.apps import AppConfig


class RolloutsConfig(AppConfig):
    name = "rollouts"
