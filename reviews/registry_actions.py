"""What reviews offers the registry floor below it, registered in ``ReviewsConfig.ready()``.

registry does not import reviews: its artifact page asks :func:`artifact_panels` for the
rollback and safety-switch forms, and its ``registry rollback|deactivate`` commands call the
services registered here (see ``registry/hooks.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from accounts.selectors import AnyUser
from registry.models import Artifact, Version
from reviews import selectors, services
from reviews.forms import DeactivateForm, RollbackForm
from reviews.models import Activation
from reviews.permissions import can_deactivate, can_roll_back
from reviews.services.rollback import rollback_point


@dataclass(frozen=True)
class VersionNotice:
    """A notice for the version page (``registry.hooks.VersionNotice``)."""

    key: str
    badge: str
    text: str
    url: str = ""
    link: str = ""


def version_notices(version: Version) -> list[VersionNotice]:
    """ "Not re-certified (due …)" for a version an emergency change made active and no normal
    change has re-certified yet."""
    found = selectors.awaiting_recertification([version.pk]).get(version.pk)
    if found is None:
        return []
    overdue = found.due_at < timezone.now()
    emergency = found.emergency
    return [
        VersionNotice(
            key="recertification",
            badge="Not re-certified",
            text=f"(due {found.due_at:%Y-%m-%d}{', overdue' if overdue else ''}): made active "
            "by the emergency change",
            url=emergency.get_absolute_url(),
            link=emergency.reference,
        )
    ]


def artifact_panels(
    user: AnyUser | None, artifact: Artifact, roles: Iterable[str] | None
) -> dict[str, Any]:
    """The rollback and safety-switch forms, for those who may use them (the services' rules)."""
    may_roll_back = bool(can_roll_back(user, artifact, roles=roles))
    may_switch_off = artifact.active_version_id is not None and bool(
        can_deactivate(user, artifact, roles=roles)
    )
    active = artifact.active_version
    summary = ""
    if may_roll_back:
        point = rollback_point(artifact)
        default = f"{point.version}, the version it replaced" if point else "none: choose one"
        summary = (
            f"Rollback makes the version you choose active again in place of "
            f"{active.version if active else 'none'} (by default {default})."
        )
    return {
        "rollback_form": RollbackForm(artifact=artifact) if may_roll_back else None,
        "rollback_summary": summary,
        "deactivate_form": DeactivateForm() if may_switch_off else None,
        "deactivate_summary": f"The safety switch leaves {artifact.path} with no active version "
        f"(now {active.version})."
        if may_switch_off and active
        else "",
    }


def rollback(**kwargs: Any) -> Activation:
    """``registry rollback``: :func:`reviews.services.rollback`."""
    return services.rollback(**kwargs)


def deactivate(**kwargs: Any) -> Activation:
    """``registry deactivate``: :func:`reviews.services.artifact_deactivate`."""
    return services.artifact_deactivate(**kwargs)
