"""Registry fixtures: built-in classes (a transactional flush removes them) and sample artifacts."""

from __future__ import annotations

from typing import Any

import pytest

from registry import services
from registry.models import Artifact, ArtifactClass
from tests.factories import publish

__all__ = ["publish"]  # test modules import it from here too


@pytest.fixture(autouse=True)
def _builtin_classes(db: None) -> None:
    services.install_builtin_classes()


@pytest.fixture
def prompt_class() -> ArtifactClass:
    return ArtifactClass.objects.get(slug="prompt")


@pytest.fixture
def author(make_user: Any, acme: Any) -> Any:
    return make_user("author", acme="member")


@pytest.fixture
def prompt(author: Any, acme: Any, prompt_class: ArtifactClass) -> Artifact:
    return services.artifact_create(
        artifact_class=prompt_class,
        tenant=acme,
        slug="qualify-lead",
        title="Qualify lead",
        actor=author,
    )
