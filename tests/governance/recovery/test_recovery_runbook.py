"""docs/recovery.md is run, command by command: every ``$ `` line of its ``console`` blocks, in
order, in a subprocess against a scratch environment (temporary folders; an SQLite file, or on
the PostgreSQL leg a PostgreSQL database) that the runbook restores from a backup of a small
SQLite source registry. Each must exit 0 and print what the runbook shows under it
(``<...>`` stands for any text). A line ending in `` &`` starts a service, stopped at the end."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.db import connection

from governance.recovery.scratch import scratch_database

ROOT = Path(__file__).resolve().parents[3]
RUNBOOK = ROOT / "docs" / "recovery.md"
BIN = Path(sys.executable).parent
#: Settings the runbook's commands may name besides its placeholders.
SETTINGS = {"SIGNING_KEY_DIR", "REGISTRY_BLOB_DIR", "DATABASE_URL", "GOVERNANCE_VAR_DIR"}
OLD_SECRET = "old-secret-for-the-runbook-test-0123456789-abcdefghijklmnop"
NEW_SECRET = "new-secret-for-the-runbook-test-9876543210-ponmlkjihgfedcba"


@dataclass
class Step:
    """One ``$ `` line of the runbook and the output it shows under it."""

    line: int
    command: str
    expected: list[str] = field(default_factory=list)

    @property
    def background(self) -> bool:
        return self.command.endswith(" &")


def runbook_steps(text: str) -> list[Step]:
    """Every ``$ `` line of every ```console block, in order, with the lines shown under it."""
    steps: list[Step] = []
    inside = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("```"):
            inside = line == "```console" if not inside else False
            continue
        if not inside or not line:
            continue
        if line.startswith("$ "):
            steps.append(Step(number, line[2:].strip()))
        else:
            assert steps, f"recovery.md:{number}: output before any command"
            steps[-1].expected.append(raw.strip())
    return steps


def documented_placeholders(text: str) -> set[str]:
    """The ``$NAME``s the placeholder table of the runbook explains."""
    table = text.split("## Placeholders", 1)[1].split("\n## ", 1)[0]
    return {
        name
        for row in table.splitlines()
        if row.startswith("| `$")
        for name in re.findall(r"`\$([A-Z_]+)`", row.split("|")[1])
    }


def pattern(expected: str) -> re.Pattern[str]:
    """An expected output line as a regex: ``<...>`` is any text, any whitespace run is one or more."""
    parts = re.split(r"(<[a-z ]+>|\s+)", expected)
    regex = "".join(
        ".*?" if part.startswith("<") else r"\s+" if part.isspace() else re.escape(part)
        for part in parts
        if part
    )
    return re.compile(regex)


def check_output(step: Step, output: str) -> None:
    lines = output.splitlines()
    at = 0
    for expected in step.expected:
        regex = pattern(expected)
        while at < len(lines) and not regex.search(lines[at]):
            at += 1
        assert at < len(lines), (
            f"recovery.md:{step.line}: `{step.command}` did not print {expected!r}:\n{output}"
        )
        at += 1


class Shell:
    """Runs commands the way an operator's shell would, in one environment."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.services: list[subprocess.Popen[bytes]] = []

    def run(self, command: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["bash", "-c", command],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check:
            assert proc.returncode == 0, (
                f"`{command}` exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def start(self, command: str) -> None:
        log = (self.logs / f"service-{len(self.services)}.log").open("wb")
        self.services.append(
            subprocess.Popen(
                ["bash", "-c", f"exec {command}"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def stop(self) -> None:
        for proc in self.services:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.services:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def clean_environment() -> dict[str, str]:
    """This process's environment without anything that points at the test's own database,
    broker or keys; the runbook's python, gunicorn and celery first on PATH."""
    drop = {"DJANGO_SETTINGS_MODULE", "REDIS_URL", "SECRET_KEY", "SECRET_KEY_FALLBACKS", "CI"}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in drop and k not in SETTINGS and not k.startswith(("CELERY_", "PYTEST_"))
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def environment(base: Path, name: str) -> dict[str, str]:
    """A registry's settings, each in a folder of its own under ``base/name``."""
    home = base / name
    home.mkdir()
    return {
        **clean_environment(),
        "DATABASE_URL": f"sqlite:///{home / 'db.sqlite3'}",
        "GOVERNANCE_VAR_DIR": str(home / "var"),
        "SIGNING_KEY_DIR": str(home / "keys"),
        "REGISTRY_BLOB_DIR": str(home / "blobs"),
        "BACKUP_DIR": str(home / "backups"),
        "HEARTBEAT_INTERVAL_SECONDS": "1",
    }


def active_kid(database_url: str) -> str:
    query = "SELECT kid FROM governance_signingkey WHERE status = 'active'"
    if database_url.startswith("postgres"):
        import psycopg

        with psycopg.connect(database_url) as conn:
            row = conn.execute(query).fetchone()
    else:
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as db:
            row = db.execute(query).fetchone()
    return str(row[0]) if row else ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: Run by ``manage.py shell`` in the source registry: a platform prompt promoted twice through
#: the real review services and bound to a slot, so that a rollback can be rehearsed.
WORLD = """
from django.conf import settings

from accounts import services
from tests.factories import TenantFactory, UserFactory
from tests.governance.recovery.drill_world import rehearsal_world

platform = TenantFactory(slug=settings.PLATFORM_TENANT_SLUG, name="Platform")


def person(name, *roles):
    user = UserFactory(username=name, password="pw")
    services.membership_add(user=user, tenant=platform, actor=None)
    for role in roles:
        services.role_grant(user=user, role=role, tenant=platform, actor=None)
    return user


people = {
    "author": person("author"),
    "reviewer": person("reviewer", "reviewer"),
    "admin": person("admin", "administrator"),
}
slot, _, _ = rehearsal_world(platform, people)
print(f"SLOT={slot.application.slug}.{slot.name}")
"""


@dataclass
class Source:
    """What an operator holds of the lost system: a backup, its key id, a copy of its keys."""

    backup: Path
    kid: str
    keys: Path
    slot: str


def make_source(base: Path) -> Source:
    """A small registry (a tenant, a user, a published version with its file, a slot whose
    artifact was promoted twice, a checkpoint), its backup, and a copy of its key folder."""
    env = environment(base, "source")
    shell = Shell(env, base)
    (base / "greeting.txt").write_text("Hello, {name}.\n")
    (base / "world.py").write_text(WORLD)
    Path(env["BACKUP_DIR"]).mkdir()
    for command in (
        "python manage.py migrate --no-input -v0",
        "python manage.py keys generate",
        "python manage.py accounts tenant-add acme --name Acme",
        "python manage.py accounts add-user alice --member acme",
        f"python manage.py registry publish prompt/acme/greeting --file {base / 'greeting.txt'}"
        " --impact minor --reason first --title Greeting --owner alice",
    ):
        shell.run(command)
    world = shell.run(f"python manage.py shell < {base / 'world.py'}")
    (slot,) = re.findall(r"^SLOT=(\S+)$", world.stdout, re.MULTILINE)
    shell.run("python manage.py events checkpoint")
    shell.run('python manage.py backup create --out "$BACKUP_DIR"')
    (backup,) = Path(env["BACKUP_DIR"]).glob("backup-*")
    keys = base / "key-backup"
    shutil.copytree(env["SIGNING_KEY_DIR"], keys)
    return Source(backup=backup, kid=active_kid(env["DATABASE_URL"]), keys=keys, slot=slot)


@pytest.fixture
def shell(tmp_path: Path) -> Iterator[Shell]:
    source = make_source(tmp_path)
    env = environment(tmp_path, "restored")
    env |= {
        "BACKUP": str(source.backup),
        "KID": source.kid,
        "KEY_BACKUP": str(source.keys),
        "BUNDLE": str(tmp_path / "log.bundle"),
        "PORT": str(free_port()),
        "OLD_SECRET": OLD_SECRET,
        "NEW_SECRET": NEW_SECRET,
        "OLD_KID": source.kid,
        "NEW_KID": "",  # the active key when a command runs (after `keys rotate`: the new one)
        "SLOT": source.slot,
    }
    with contextlib.ExitStack() as cleanup:
        if connection.vendor == "postgresql":
            # The PostgreSQL leg restores the SQLite backup into a new PostgreSQL database.
            env["DATABASE_URL"] = cleanup.enter_context(scratch_database()).url
        running = Shell(env, tmp_path)
        cleanup.callback(running.stop)
        yield running


#: Placeholders whose value depends on what the runbook did before (resolved before each step).
RESOLVE: dict[str, Callable[[dict[str, str]], str]] = {
    "NEW_KID": lambda env: active_kid(env["DATABASE_URL"]),
}


def test_the_runbook_parses_and_names_only_documented_placeholders():
    text = RUNBOOK.read_text()
    steps = runbook_steps(text)
    assert len(steps) >= 20, [s.command for s in steps]
    documented = documented_placeholders(text)
    for step in steps:
        used = set(re.findall(r"\$\{?([A-Z_]+)", step.command))
        unknown = used - documented - SETTINGS
        assert not unknown, f"recovery.md:{step.line}: undocumented placeholder(s) {unknown}"


def test_every_command_in_the_runbook_runs(shell: Shell):
    text = RUNBOOK.read_text()
    missing = documented_placeholders(text) - set(shell.env)
    assert not missing, f"the test gives no value for {missing}"
    ran = 0
    for step in runbook_steps(text):
        for name, resolve in RESOLVE.items():
            if f"${name}" in step.command:
                shell.env[name] = resolve(shell.env)
        if step.background:
            shell.start(step.command.removesuffix(" &"))
            continue
        proc = shell.run(step.command)
        check_output(step, proc.stdout + proc.stderr)
        ran += 1
    assert ran == len([s for s in runbook_steps(text) if not s.background])


SAMPLE = """
```console
$ python manage.py events verify
OK: <n> events verified
$ gunicorn governance.wsgi &
```

```sh
$ not a console block
```
"""


def test_the_parser_reads_commands_expected_output_and_services():
    steps = runbook_steps(SAMPLE)
    assert [(s.line, s.command, s.expected, s.background) for s in steps] == [
        (3, "python manage.py events verify", ["OK: <n> events verified"], False),
        (5, "gunicorn governance.wsgi &", [], True),
    ]


def test_expected_output_must_be_printed_in_order():
    step = Step(1, "x", ["OK: <n> events verified", "tree size <n>,  root <hex>"])
    check_output(step, "noise\nOK: 12 events verified\ntree size 12, root ab12\n")
    with pytest.raises(AssertionError, match="did not print"):
        check_output(step, "tree size 12, root ab12\nOK: 12 events verified\n")
    with pytest.raises(AssertionError, match="did not print"):
        check_output(step, "FAILED at seq 3: entry altered\n")
