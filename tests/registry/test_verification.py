"""Tampering with the registry's tables behind the services' back is found.

A hostile database administrator (triggers dropped) rewrites a column the signed manifest
covers, deletes a published version's row, or adds a row the log never recorded.
"""

from __future__ import annotations

import contextlib
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from registry import services
from registry.models import Version
from registry.services import publishing
from registry.verification import check_version, log_problem, manifest_problem, verify_versions
from tests.registry.conftest import publish

pytestmark = pytest.mark.django_db
TEXT = "Qualify leads for {{ product }}. Customer: {{ customer }}."
PINS = {"pinned_models": ["gpt-4o-2024-08-06"], "labels": {"team": "sales"}}


def tamper(sql: str, params: list[Any]) -> None:
    """Raw SQL with the PostgreSQL triggers out of the way, as the attacker would have it."""
    guard: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
    if connection.vendor == "postgresql":
        import pgtrigger

        guard = pgtrigger.ignore(
            "registry.Version:version_immutable", "registry.VersionDependency:dependency_immutable"
        )
    with guard, connection.cursor() as cursor:
        cursor.execute(sql, params)


def db_id(pk: Any) -> Any:
    return pk.hex if connection.vendor == "sqlite" else str(pk)


def as_json(value: Any) -> str:
    return "%s::jsonb" if connection.vendor == "postgresql" else "%s"


def run_verify(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("registry", "verify", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return int(exit_.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


@pytest.fixture
def versions(prompt: Any, author: Any, prompt_class: Any, acme: Any) -> dict[str, Version]:
    tone = services.artifact_create(
        artifact_class=prompt_class, tenant=acme, slug="tone", title="Tone", actor=author
    )
    t1 = publish(tone, "Be nice.", "major")
    t2 = publish(tone, "Be very nice.", "minor")
    v1, _ = services.version_publish(
        artifact=prompt,
        content=services.Content(text=TEXT),
        impact="major",
        reason="first",
        actor=author,
        metadata=PINS,
        dependencies=[t1.pinned],
    )
    assert run_verify() == (0, "OK: 3 versions verified\n", "")
    return {"t1": t1, "t2": t2, "v1": v1}


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("metadata", {"pinned_models": ["evil-model"], "labels": {"team": "sales"}}, "metadata"),
        ("metadata", {"pinned_models": ["gpt-4o-2024-08-06"]}, "metadata"),
        ("input_variables", [{"name": "product", "required": False}], "input_variables"),
        ("detected_changes", [{"impact": "patch", "change": "nothing"}], "detected_changes"),
        ("change_reason", "a better story", "change_reason"),
        ("declared_impact", "patch", "declared_impact"),
        ("content_size", 1, "content kind, size or digest"),
        ("created_at", "later", "created_at"),
        ("created_by_id", "other", "created_by"),
    ],
)
def test_a_rewritten_column_the_manifest_covers_fails_verification(
    versions, make_user, column, value, reason
):
    v1 = versions["v1"]
    if column == "created_at":
        value = v1.created_at - timedelta(days=3)
    elif column == "created_by_id":
        value = db_id(make_user("mallory").pk)
    placeholder = as_json(value) if isinstance(value, (dict, list)) else "%s"
    encoded = json.dumps(value) if isinstance(value, (dict, list)) else value
    tamper(
        f"UPDATE registry_version SET {column} = {placeholder} WHERE id = %s",  # noqa: S608
        [encoded, db_id(v1.pk)],
    )
    fresh = Version.objects.get(pk=v1.pk)
    result = check_version(fresh)
    assert not result.ok
    assert result.reason == f"{reason} differs from the signed manifest (column rewritten)"
    code, out, err = run_verify()
    assert (code, out) == (1, "")
    assert err == f"FAILED: {v1.pinned}: {result.reason}\n"


def test_a_rewritten_dependency_row_fails_verification(versions):
    v1, t2 = versions["v1"], versions["t2"]
    tamper(
        "UPDATE registry_versiondependency SET reference = %s, upstream_id = %s WHERE version_id = %s",
        [t2.pinned, db_id(t2.pk), db_id(v1.pk)],
    )
    _checked, failure = verify_versions([Version.objects.get(pk=v1.pk)])
    assert failure is not None
    assert failure.version.pk == v1.pk
    assert failure.reason == "dependency list differs from the signed manifest (column rewritten)"


def test_api_does_not_call_rewritten_metadata_verified(versions, author, token_client):
    v1 = versions["v1"]
    tamper(
        f"UPDATE registry_version SET metadata = {as_json(None)} WHERE id = %s",  # noqa: S608
        [json.dumps({"pinned_models": ["evil-model"]}), db_id(v1.pk)],
    )
    data = (
        token_client(author)
        .get(f"/api/v1/artifacts/{v1.artifact.path}/versions/{v1.version}/")
        .json()
    )
    assert data["metadata"] == {"pinned_models": ["evil-model"]}
    assert json.loads(data["manifest"])["pinned_models"] == ["gpt-4o-2024-08-06"]
    assert data["verified"] == {
        "ok": False,
        "detail": "metadata differs from the signed manifest (column rewritten)",
    }


def test_a_deleted_published_version_fails_registry_verify(versions):
    t2 = versions["t2"]  # not recommended, no stage: only its row points at it
    tamper("DELETE FROM registry_version WHERE id = %s", [db_id(t2.pk)])
    code, out, err = run_verify()
    assert (code, out) == (1, "")
    assert err.startswith("FAILED: event #")
    assert f"published {t2.path}#{t2.manifest_sha256} but no version row has that hash" in err
    assert log_problem() is not None


@pytest.mark.usefixtures("versions")
def test_a_version_row_the_log_never_recorded_fails_verification(prompt, monkeypatch):
    monkeypatch.setattr(publishing, "events_record", lambda specs: [])
    ghost = publish(prompt, TEXT + " Politely.", "patch", metadata=PINS)
    monkeypatch.undo()
    assert check_version(ghost).ok  # signed and consistent on its own...
    _checked, failure = verify_versions([ghost])
    assert failure is not None
    assert failure.version.pk == ghost.pk
    assert failure.reason == "no version_published event in the log names this version and hash"
    code, _, err = run_verify()  # ...but the log never saw it
    assert code == 1
    assert err.startswith(f"FAILED: {ghost.pinned}: no version_published event")


def test_verifying_more_versions_takes_no_more_queries(versions, author):
    """Dependencies are read for many versions at once (a restore verifies every version)."""
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        every = Version.objects.select_related(
            "artifact__artifact_class", "artifact__tenant", "created_by"
        )
        with CaptureQueriesContext(connection) as ctx:
            checked, failure = verify_versions(every)
        assert failure is None
        assert checked == Version.objects.count()
        return len(ctx.captured_queries)

    few = queries()
    tone = versions["t1"].artifact
    for i in range(12):
        publish(tone, f"Be nice, take {i}.", "patch")
    assert queries() == few


def test_text_columns_compare_as_canonical_json(prompt, author):
    """A text column equals its signed value only as the same JSON text: never a number or
    null in its place, and text beyond ASCII compares exactly too."""
    version, _ = services.version_publish(
        artifact=prompt,
        content=services.Content(text=TEXT),
        impact="major",
        reason="prüfen ✓ \U0001d4b3",
        actor=author,
    )
    version = Version.objects.select_related("artifact__tenant", "created_by").get(pk=version.pk)
    body = json.loads(bytes(version.manifest))
    assert manifest_problem(version, body) is None
    differs = "change_reason differs from the signed manifest (column rewritten)"
    for signed in ("prüfen ✓", "prüfen ✓ \U0001d4b3 ", None, 1, ["prüfen ✓ \U0001d4b3"]):
        assert manifest_problem(version, {**body, "change_reason": signed}) == differs
    assert manifest_problem(version, {**body, "created_by": None}) == (
        "created_by differs from the signed manifest (column rewritten)"
    )
    assert manifest_problem(version, {**body, "version": 1}) == (
        "version differs from the signed manifest (column rewritten)"
    )
