"""The label filter: the words people read for a stored choice value."""

from __future__ import annotations

import pytest
from django.template import Context, Template

from governance.templatetags.labels import choice_label


def test_values_read_as_their_labels_and_anything_else_as_itself() -> None:
    assert choice_label("privacy_officer", "role") == "Privacy officer"
    assert choice_label("in_review", "change_status") == "In review"
    assert choice_label("owner", "requirement") == "Accountable owner"
    assert choice_label("paused", "rollout_state") == "Paused"
    assert choice_label("not-a-role", "role") == "not-a-role"


def test_a_wrong_kind_is_a_template_bug_that_fails_loudly() -> None:
    with pytest.raises(KeyError):
        choice_label("reviewer", "roles")


def test_templates_load_it() -> None:
    html = Template('{% load labels %}<b data-role="{{ r }}">{{ r|label:"role" }}</b>').render(
        Context({"r": "security_officer"})
    )
    assert html == '<b data-role="security_officer">Security officer</b>'
