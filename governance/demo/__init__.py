"""The demo data of ``manage.py seed_demo``, built part by part (idempotent).

- ``people``: the tenants (acme, globex, the shared platform tenant) and one user per role;
- ``registry_content``: a living registry (several classes, tenants, versions, dependencies);
- ``changes``: change requests in every state of review;
- ``waivers``: the governance story (waivers in every state, a deprecation, an overdue
  post-mortem), told with the clock moved back;
- ``lifecycle``: a model with a version at every stage (draft, evaluated, approved, active),
  action-eligible with a deputy, trained on a dataset whose versions it pins;
- ``rollouts`` and ``telemetry``: applications, slots and rollouts (succeeded, rolled back,
  a canary at 25%), with telemetry through the real ingest.

``common`` holds the story's clock and the helpers that take a change through review.
"""

from __future__ import annotations

from django.db import transaction
from django.test.utils import override_settings

from accounts.models import Tenant
from governance.demo.changes import seed_reviews
from governance.demo.lifecycle import seed_lifecycle, stage_versions
from governance.demo.people import DEMO_USERS, TENANTS, demo_password, seed_people
from governance.demo.registry_content import seed_registry
from governance.demo.rollouts import seed_rollouts
from governance.demo.waivers import seed_governance

__all__ = ["DEMO_USERS", "TENANTS", "demo_password", "seed", "stage_versions"]


@transaction.atomic
def seed_people_and_reviews() -> dict[str, Tenant]:
    """People, registry, changes, the lifecycle stages and the governance story, in one transaction."""
    tenants = seed_people()
    seed_registry(tenants)
    seed_reviews(tenants)
    seed_lifecycle(tenants)
    seed_governance(tenants)
    return tenants


def seed() -> None:
    """Everything; the rollouts commit step by step (see ``seed_rollouts``)."""
    # The demo's notifications stay in the app: no emails printed while seeding.
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
        tenants = seed_people_and_reviews()
        seed_rollouts(tenants)
