"""Change-request fixtures: the people of acme, and artifacts with versions to propose."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from registry import services as registry
from registry.models import Artifact, Version
from reviews import services
from tests.factories import PINS, make_artifact, publish

__all__ = ["PINS", "make_artifact", "publish"]  # test modules import them from here too


@pytest.fixture(autouse=True)
def _builtin_classes(db: None) -> None:
    registry.install_builtin_classes()


@pytest.fixture
def people(make_user: Any, acme: Any) -> dict[str, Any]:
    """author (member), reviewer, admin, privacy, security, and 'multi' holding reviewer + administrator."""
    return {
        "author": make_user("author", acme="member"),
        "reviewer": make_user("reviewer", acme=["member", "reviewer"]),
        "admin": make_user("admin", acme=["member", "administrator"]),
        "privacy": make_user("privacy", acme=["member", "privacy_officer"]),
        "security": make_user("security", acme=["member", "security_officer"]),
        "multi": make_user("multi", acme=["member", "reviewer", "administrator"]),
    }


@pytest.fixture
def prompt(acme: Any, people: dict[str, Any]) -> Artifact:
    return make_artifact(acme, "prompt", "qualify-lead", owner=people["admin"])


@pytest.fixture
def prompt_v1(prompt: Artifact) -> Version:
    return publish(prompt, impact="major", text="Qualify {{ customer }}.", metadata=PINS)


@pytest.fixture
def prompt_v2(prompt: Artifact, prompt_v1: Version) -> Version:
    return publish(prompt, text="Qualify {{ customer }} politely.", metadata=PINS)


@pytest.fixture
def open_change(acme: Any, people: dict[str, Any]) -> Callable[..., Any]:
    def make(*versions: Version, **kw: Any) -> Any:
        kw.setdefault("title", "Tune the prompt")
        kw.setdefault("rollback_plan", "Roll back to the previous version.")
        return services.change_create(
            tenant=acme, actor=people["author"], proposed=list(versions), **kw
        )

    return make
