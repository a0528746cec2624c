"""The registry list names, for each artifact, its active version (every bound slot's default)
and the slots it serves, asked of rollouts through registry's hook, in a fixed number of queries."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from accounts.models import Tenant
from rollouts.choices import RolloutState
from rollouts.models import Application, Rollout, Slot
from tests.factories import make_artifact
from tests.pages import page_queries

pytestmark = pytest.mark.django_db


def row_of(html: str, path: str) -> str:
    match = re.search(rf'<tr>\s*<td><a href="/registry/{path}/">.*?</tr>', html, re.S)
    assert match is not None, path
    return match.group(0)


def test_each_artifact_shows_its_active_version_and_the_slots_it_serves(
    client: Client, people: dict[str, Any], slot: Slot, prompt_v1: Any, canary_rollout: Rollout
) -> None:
    Rollout.objects.filter(pk=canary_rollout.pk).update(state=RolloutState.PROGRESSING)
    client.force_login(people["author"])
    html = client.get("/registry/").content.decode()
    row = row_of(html, "prompt/platform/qualify-lead")
    assert f'<a href="{prompt_v1.get_absolute_url()}">1.0.0</a>' in row  # the active version
    assert f'<a href="{slot.get_absolute_url()}" data-slot="sales-agent/qualifyLead">' in row
    assert f"{canary_rollout.reference} in progress" in row
    assert '<th scope="col">Slots it serves by default</th>' in html


def test_an_unbound_artifact_says_so(
    client: Client, people: dict[str, Any], acme: Tenant, platform: Tenant
) -> None:
    make_artifact(acme, "prompt", "lonely")
    client.force_login(people["author"])
    row = row_of(client.get("/registry/").content.decode(), "prompt/acme/lonely")
    assert row.count('<span class="muted">none</span>') == 1
    assert "none active" in row


def test_the_slot_column_costs_a_fixed_number_of_queries(
    client: Client, people: dict[str, Any], acme: Tenant, platform: Tenant
) -> None:
    app = Application.objects.create(tenant=acme, slug="acme-bot", name="Acme bot")
    client.force_login(people["author"])

    def bind(i: int) -> None:
        artifact = make_artifact(acme, "prompt", f"p{i}")
        Slot.objects.create(application=app, name=f"slot{i}a", artifact=artifact)
        Slot.objects.create(application=app, name=f"slot{i}b", artifact=artifact)

    bind(0)
    few, html = page_queries(client, "/registry/")
    assert html.count("data-slot=") == 2
    for i in range(1, 8):
        bind(i)
    many, html = page_queries(client, "/registry/")
    assert html.count("data-slot=") == 16
    assert many == few
