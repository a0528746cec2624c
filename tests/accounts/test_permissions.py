"""Managing access has one rule (accounts.permissions.can_manage_access): the services refuse
with its reason, and the tenant page offers the grant and revoke forms only to those it allows."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.test import Client

from accounts import permissions, services
from accounts.models import RoleGrant
from governance.kernel.errors import Forbidden
from governance.kernel.permissions import Decision

pytestmark = pytest.mark.django_db


def test_grant_and_revoke_follow_one_rule(acme: Any, make_user: Any) -> None:
    boss = make_user("boss", acme=["member", "administrator"])
    rev = make_user("rev", acme=["member", "reviewer"])
    other = make_user("other", acme="member")
    reason = "Only an administrator of 'acme' can manage its access."
    assert permissions.can_manage_access(rev, acme) == Decision(False, reason)
    assert permissions.can_manage_access(boss, acme)
    assert not permissions.can_manage_access(boss, None)  # platform-wide roles
    with pytest.raises(Forbidden) as refused:
        services.role_grant(user=other, role="reviewer", tenant=acme, actor=rev, reason="x")
    assert refused.value.message == reason
    with pytest.raises(Forbidden) as refused:
        services.role_revoke(user=boss, role="administrator", tenant=acme, actor=rev, reason="x")
    assert refused.value.message == reason
    assert not RoleGrant.objects.filter(user=other, role="reviewer").exists()

    client = Client()
    client.force_login(rev)
    page = client.get("/tenants/acme/").content.decode()
    assert "Grant a role" not in page
    assert "Revoke Reviewer" not in page
    forced = client.post(
        "/tenants/acme/grant/", {"username": "other", "role": "reviewer", "reason": "x"}
    )
    assert forced.status_code == 403
    assert reason in html.unescape(forced.content.decode())
    assert not RoleGrant.objects.filter(user=other, role="reviewer").exists()
    client.force_login(boss)
    page = client.get("/tenants/acme/").content.decode()
    assert "Grant a role" in page
    assert "Revoke Reviewer" in page
