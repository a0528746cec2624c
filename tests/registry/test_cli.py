"""``manage.py registry``: publish, bump-version, show, history, verify, import/export."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from registry.models import Version

pytestmark = pytest.mark.django_db
V1 = "Qualify leads for {{ product }}. Customer: {{ customer }}."


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("registry", *args, stdout=out)
    return out.getvalue()


def run_error(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with pytest.raises(SystemExit) as code:
        call_command("registry", *args, stdout=io.StringIO(), stderr=err)
    return int(code.value.code or 0), err.getvalue()


@pytest.mark.usefixtures("prompt")
def test_publish_bump_show_history_verify(tmp_path):
    f = tmp_path / "p.md"
    f.write_text(V1)
    out = run(
        "publish",
        "prompt/acme/qualify-lead",
        "--file",
        str(f),
        "--impact",
        "major",
        "--reason",
        "first",
    )
    v = Version.objects.get()
    assert out == f"prompt/acme/qualify-lead/1.0.0 {v.manifest_sha256}\n"
    f.write_text("Qualify leads for {{ product }}.")
    dry = run("bump-version", "prompt/acme/qualify-lead", "--file", str(f), "--impact", "major")
    assert dry.splitlines()[0] == "prompt/acme/qualify-lead/2.0.0 (detected impact: major)"
    assert "customer" in dry
    assert Version.objects.count() == 1
    manifest = json.loads(run("show", "prompt/acme/qualify-lead/1.0.0"))
    assert manifest["version"] == "1.0.0"
    assert manifest["change_reason"] == "first"
    assert run("history", "prompt/acme/qualify-lead").startswith("1.0.0\tmajor\t")
    assert run("verify") == "OK: 1 versions verified\n"
    assert run("verify", "qualify-lead@1.0.0", "--tenant", "acme") == "OK: 1 versions verified\n"


@pytest.mark.usefixtures("prompt")
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["publish", "prompt/acme/ghost", "--impact", "major", "--reason", "x"],
            "No artifact prompt/acme/ghost",
        ),
        (
            ["publish", "nope/acme/qualify-lead", "--impact", "major", "--reason", "x"],
            "No artifact nope/acme/qualify-lead",
        ),
        (
            [
                "publish",
                "prompt/acme/qualify-lead",
                "--impact",
                "major",
                "--reason",
                "x",
                "--version",
                "1.0",
            ],
            "version",
        ),
        (["show", "qualify-lead@1.0.0"], "tenant"),
        (
            ["publish", "prompt/acme/qualify-lead", "--impact", "major", "--reason", "x", "EMPTY"],
            "Content is required",
        ),
        (["show", "prompt/acme/qualify-lead/9.9.9"], "No version"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, args, message):
    f = tmp_path / "p.md"
    f.write_text(V1)
    if args[-1] == "EMPTY":
        f.write_text("")
        args = args[:-1]
    if args[0] == "publish":
        args = [*args[:2], "--file", str(f), *args[2:]]
    code, err = run_error(*args)
    assert code == 2, err
    assert err.count("\n") == 1, err
    assert message in err, err
    assert Version.objects.count() == 0


@pytest.mark.usefixtures("acme")
def test_import_is_idempotent_refuses_changed_files_and_round_trips(tmp_path):
    root = tmp_path / "repo" / "prompt-templates" / "task" / "qualify-lead"
    root.mkdir(parents=True)
    (root / "1.0.0.md").write_text(
        "---\ntitle: Qualify lead\nreason: first\nvariables: product, customer\n---\n" + V1
    )
    (root / "1.1.0.md").write_text(
        "---\nimpact: minor\nreason: region\nvariables: product, customer, region?\n---\n"
        + V1
        + " {{ region }}"
    )
    assert (
        run("import", str(tmp_path / "repo"), "--tenant", "acme")
        == "Imported 2 new versions, 0 already published\n"
    )
    assert (
        run("import", str(tmp_path / "repo"), "--tenant", "acme")
        == "Imported 0 new versions, 2 already published\n"
    )
    out = tmp_path / "out"
    assert run("export", str(out), "--tenant", "acme") == f"Wrote 2 files to {out}\n"
    exported = out / "prompt-templates" / "task" / "qualify-lead" / "1.1.0.md"
    assert exported.read_text().endswith(V1 + " {{ region }}")
    assert (
        run("import", str(out), "--tenant", "acme")
        == "Imported 0 new versions, 2 already published\n"
    )
    (root / "1.0.0.md").write_text("---\ntitle: Qualify lead\n---\nSomething else")
    code, err = run_error("import", str(tmp_path / "repo"), "--tenant", "acme")
    assert code == 2
    assert "1.0.0.md" in err
    assert "immutable" in err
    (root / "2.0.0.md").write_text("---\nimpact: major\nreason: x\n---\nNew")
    (root / "1.0.0.md").write_text(
        "---\ntitle: Qualify lead\nreason: first\nvariables: product, customer\n---\n" + V1
    )
    assert (
        run("import", str(tmp_path / "repo"), "--tenant", "acme")
        == "Imported 1 new versions, 2 already published\n"
    )


def test_seed_demo_builds_a_living_registry():
    from django.core.management import call_command as cc

    cc("seed_demo", "--quiet-logins", stdout=io.StringIO())
    cc("seed_demo", "--quiet-logins", stdout=io.StringIO())  # idempotent
    from registry.models import Artifact, VersionDependency

    assert Artifact.objects.values("artifact_class__slug").distinct().count() >= 4
    # acme's, globex's and the platform tenant's shared prompt
    assert set(Artifact.objects.values_list("tenant__slug", flat=True)) == {
        "acme",
        "globex",
        "platform",
    }
    impacts = set(Version.objects.values_list("declared_impact", flat=True))
    assert {"major", "minor", "patch"} <= impacts
    assert VersionDependency.objects.exists()
    assert run("verify").startswith("OK: ")
