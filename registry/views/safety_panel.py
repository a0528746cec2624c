"""The artifact page's action-eligible panel: the flag, the deputy, the safety switch's state,
and the forms for those who may change them (the services' own predicates decide who)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.http import HttpRequest

from accounts.models import User
from governance.kernel import reauth
from registry import selectors
from registry.forms import ActionEligibleForm, DeputyForm, SafetySwitchForm
from registry.models import Artifact
from registry.permissions import can_flip_safety_switch, can_set_action_eligible, can_set_deputy


def safety_context(
    request: HttpRequest,
    artifact: Artifact,
    *,
    roles: Iterable[str],
    members: Any,
    **posted: Any,
) -> dict[str, Any]:
    """What ``registry/_action_eligible.html`` shows; a posted form (``eligible_form``,
    ``deputy_form``, ``switch_form``) comes back with its errors."""
    eligible_form: ActionEligibleForm | None = posted.get("eligible_form")
    deputy_form: DeputyForm | None = posted.get("deputy_form")
    switch_form: SafetySwitchForm | None = posted.get("switch_form")
    roles = set(roles)
    user: User = request.user  # type: ignore[assignment]
    switch = selectors.engaged_switch(artifact)
    offered: dict[str, Any] = {"safety_switch": switch}
    if switch is not None:
        offered["halted_reason"] = selectors.halt_message(switch, artifact.path)
    if can_set_action_eligible(user, artifact, roles=roles):
        offered["eligible_form"] = eligible_form or ActionEligibleForm(
            initial={"value": "off" if artifact.action_eligible else "on"}
        )
    if can_set_deputy(user, artifact, roles=roles):
        offered["deputy_form"] = deputy_form or DeputyForm(
            members=members,
            initial={"deputy": artifact.deputy.username if artifact.deputy else None},
        )
    if artifact.action_eligible and can_flip_safety_switch(user, artifact, roles=roles):
        offered["switch_form"] = switch_form or SafetySwitchForm(
            needs_password=not reauth.recently_confirmed(request)
        )
    return offered
