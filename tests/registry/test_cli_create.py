"""``registry create`` and ``registry publish --title --owner``: a pipeline can start an artifact."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command

from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event
from registry.models import Artifact, Version

pytestmark = pytest.mark.django_db
V1 = "Answer {{ customer }} kindly."


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("registry", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_create_starts_an_artifact_with_its_title_and_owner(author: Any) -> None:
    code, out, _ = run(
        "create", "prompt/acme/reply", "--title", "Reply", "--owner", "author", "--summary", "CS"
    )
    assert (code, out) == (0, "prompt/acme/reply created (owner author)\n")
    made = Artifact.objects.get(slug="reply")
    assert (made.title, made.summary, made.owner, made.created_by) == ("Reply", "CS", author, None)
    event = Event.objects.get(kind=EventKind.ARTIFACT_CREATED)
    assert event.payload == {"path": "prompt/acme/reply", "title": "Reply", "owner": "author"}
    code, _, err = run("create", "prompt/acme/reply", "--title", "Again", "--owner", "author")
    assert code == 2
    assert "already exists" in err
    assert err.count("\n") == 1


def test_publish_creates_a_missing_artifact_when_given_its_title_and_owner(
    author: Any, tmp_path: Any
) -> None:
    f = tmp_path / "reply.md"
    f.write_text(V1)
    base = ["publish", "prompt/acme/reply", "--file", str(f), "--impact", "major"]
    code, _, err = run(*base, "--reason", "first")
    assert code == 2
    assert "No artifact prompt/acme/reply" in err
    assert "registry create" in err
    code, out, _ = run(*base, "--reason", "first", "--title", "Reply", "--owner", "author")
    version = Version.objects.get()
    assert (code, out) == (0, f"prompt/acme/reply/1.0.0 {version.manifest_sha256}\n")
    assert version.artifact.owner == author
    assert version.artifact.title == "Reply"
    # once it exists, --title is ignored and the next publish goes to the same artifact
    f.write_text(V1 + " Thanks.")
    code, out, _ = run(*base[:-1], "minor", "--reason", "thanks", "--title", "Other")
    assert code == 0
    assert out.startswith("prompt/acme/reply/1.1.0 ")
    assert Artifact.objects.get().title == "Reply"


@pytest.mark.usefixtures("author")
def test_a_publish_that_fails_leaves_no_artifact_behind(tmp_path: Any) -> None:
    f = tmp_path / "reply.md"
    f.write_text(V1)
    args = ["publish", "prompt/acme/reply", "--file", str(f), "--impact", "major"]
    events = Event.objects.count()
    code, _, err = run(*args, "--reason", " ", "--title", "Reply", "--owner", "author")
    assert code == 2
    assert "reason" in err
    code, _, err = run(*args, "--reason", "first", "--title", "Reply")
    assert code == 2
    assert "--owner" in err
    code, _, err = run(*args, "--reason", "first", "--title", "Reply", "--owner", "ghost")
    assert code == 2
    assert "ghost" in err
    assert not Artifact.objects.exists()
    assert Event.objects.count() == events


def test_show_and_history_say_the_hash_the_stage_and_which_version_is_active(
    prompt: Artifact, tmp_path: Any
) -> None:
    from tests.registry.conftest import publish

    v1 = publish(prompt, "Qualify {{ product }}.", "major")
    v2 = publish(prompt, "Qualify {{ product }} now.", "patch")
    code, out, _ = run("history", prompt.path)
    assert "[active]" not in out
    assert out.endswith(f"# {prompt.path} has no active version\n")
    Artifact.objects.filter(pk=prompt.pk).update(active_version=v1)
    rows = run("history", prompt.path)[1].splitlines()
    assert rows[0].startswith("1.0.1\t")
    assert "[active]" not in rows[0]
    assert rows[1].startswith("1.0.0\t")
    assert rows[1].endswith("\t[active]")
    code, out, err = run("show", v2.path)
    assert code == 0
    assert err.splitlines() == [
        f"{v2.path} sha256 {v2.manifest_sha256}",
        "stage: draft (not active)",
    ]
    _, out, err = run("show", prompt.path)  # unversioned: the active version
    assert '"version": "1.0.0"' in out
    assert err.splitlines()[1] == "stage: draft (active)"
