"""Every route, walked with another tenant's identifiers, answers exactly as for a missing object.

The walker reads the URL configuration (``get_resolver()``, recursively), so a new route is
covered the day it is added: a path parameter it does not know fails the test until a value
is added to ``FOREIGN`` below. An acme user (holding every role in acme, so that no role check
hides a missing tenant check) calls each route with globex's identifiers, and again with
identifiers that exist nowhere; the two answers must have the same status (404, or 405 for a
method the route does not take, or for a GET of an action the redirect to its object's page) and, once the identifiers are swapped, the same body. No
globex data that was not in the request (titles, content, hashes, usernames, ids) may appear.
"""

from __future__ import annotations

import difflib
import itertools
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services as accounts
from accounts.models import Tenant, User
from accounts.passkeys import RelyingParty
from governance.kernel.events.models import Event
from governance.kernel.events.services import verification_start
from registry import services as registry
from reviews import services as reviews
from reviews.choices import CheckKind
from reviews.waivers.models import Waiver
from tests.passkey_authenticator import SoftAuthenticator
from tests.reviews.conftest import PINS, make_artifact

#: Route prefixes that are not tenant-scoped, each with the reason.
NOT_TENANT_SCOPED = {
    "admin/": "Django admin: staff only (acme's user is not staff, so it redirects to login "
    "before any lookup); operators see every tenant there by design",
    "login/": "signs in; no tenant data",
    "logout/": "signs out (it would end the walker's session)",
    "favicon.ico": "a redirect to the site's icon; no tenant data",
    "healthz": "liveness probe; no tenant data",
    "readyz": "readiness probe; no tenant data",
    "api/v1/schema/": "OpenAPI schema; no tenant data",
    "api/v1/docs/": "OpenAPI viewer; no tenant data",
    "api/v1/redoc/": "OpenAPI viewer; no tenant data",
    "api/v1/keys/": "public keys of the log, published for anyone to verify with",
    "api/v1/me/": "the caller themself",
    "api/v1/^tokens/$": "the caller's own tokens (a POST makes one: the answers differ by design)",
    "account/tokens/": "the caller's own tokens (a POST makes one)",
    "api/v1/^passkeys/registration-options/": "the caller's own passkey ceremony (a POST "
    "begins one with a fresh random challenge: the answers differ by design)",
    "account/passkeys/register/": "the caller's own passkey ceremony (a POST begins one with a "
    "fresh random challenge: the answers differ by design)",
    "reviews/confirm/": "re-enter one's own password",
    "reviews/notifications/": "the caller's own notifications",
    "metrics": "Prometheus exposition: platform administrators only",
    "api/v1/^events/verify/": "starts a verification of the whole log, which has no tenant (a POST "
    "makes a run: the answers differ by design); reading runs is tested on its own",
    "api/v1/^checkpoints/": "signed tree heads of the whole log (hashes only); making one needs "
    "a platform administrator",
    "ofrep/v1/": "OpenFeature evaluation takes service tokens only (a person's token is a 401 "
    "before any lookup); a token reads its own tenant, and another tenant's flag answering as "
    "a missing one is tested in tests/rollouts/test_ofrep.py",
    "api/v1/artifact-classes/": "the platform's catalogue of classes; adding one needs a "
    "platform administrator",
}

#: The words a ``<action>`` segment is tried with (the known actions and one unknown).
ACTIONS = [
    "submit",
    "approve",
    "reject",
    "withdraw",
    "promote",
    "comment",
    "evidence",
    "rerun",
    "postmortem",
    "renew",
    "revoke",
    "countersign",
    "frobnicate",
]

METHODS = ["get", "post", "put", "patch", "delete"]
PAGE_METHODS = ["get", "post"]  # pages answer the others with 405 before any lookup


@dataclass
class Globex:
    """globex's objects, and for each identifier a value of the same shape that exists nowhere."""

    values: dict[str, list[tuple[str, str]]]
    secrets: list[str]
    query: list[tuple[dict[str, str], dict[str, str]]]
    body: tuple[dict[str, Any], dict[str, Any]]


def _routes() -> Iterator[tuple[str, URLPattern, list[str]]]:
    """(route text with its pieces joined, pattern, path parameters) for every URL pattern."""

    def walk(resolver: URLResolver, prefix: str) -> Iterator[tuple[str, URLPattern, list[str]]]:
        for entry in resolver.url_patterns:
            text = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                yield from walk(entry, text)
            else:
                found = re.findall(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>", text)
                yield text, entry, [a or b for a, b in found]

    yield from walk(get_resolver(), "")


def _url(route: str, values: dict[str, str]) -> str:
    """Fill a route's parameters (path converters and regex groups alike) and drop anchors."""
    url = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: values[m.group(1)], route)
    url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], url)
    return "/" + url.replace("^", "").replace("$", "")


def _allowed(route: str) -> bool:
    return any(route.startswith(prefix) for prefix in NOT_TENANT_SCOPED)


@pytest.fixture
def globex_world(acme: Tenant, globex: Tenant, make_user: Any) -> Globex:
    registry.install_builtin_classes()
    owner = make_user("globex-owner", globex=["member", "administrator"])
    author = make_user("globex-author", globex="member")
    artifact = make_artifact(globex, "prompt", "globex-secret-prompt", owner=owner)
    artifact.title = "Globex Secret Prompt Title"
    artifact.save(update_fields=["title"])
    first, second = (
        registry.version_publish(
            artifact=artifact,
            content=registry.Content(text=f"GLOBEX-CONTENT {n} {{{{ x }}}}"),
            impact="major",
            version=number,
            reason="globex work",
            actor=None,
            metadata=PINS,
        )[0]
        for n, number in enumerate(["7.3.0", "8.0.0"])
    )
    change = reviews.change_create(
        tenant=globex,
        actor=author,
        proposed=[second],
        title="Globex secret change title",
        rollback_plan="Globex rollback plan.",
    )
    waiver = Waiver.objects.create(
        tenant=globex,
        year=timezone.now().year,
        number=1,
        check_kind=CheckKind.OFFLINE_EVALUATION,
        owner=owner,
        justification="Globex secret justification.",
        mitigation="Globex secret mitigation.",
        expires_at=timezone.now() + timedelta(days=20),
        granted_by=owner,
    )
    waiver.artifacts.add(artifact)
    event = Event.objects.filter(tenant=globex).order_by("seq").first()
    assert event is not None
    run = verification_start(actor=owner)
    token, _ = accounts.token_create(user=owner, name="globex token", actor=None)
    begun, options = accounts.passkey_registration_begin(
        user=owner, party=RelyingParty(rp_id="testserver", origin="http://testserver")
    )
    passkey = accounts.passkey_register(
        user=owner,
        challenge_id=begun.pk,
        credential=SoftAuthenticator().register(options),
        name="Globex secret laptop",
    )
    pinned_wrong = f"{artifact.path}:{first.version}#{'0' * 64}"
    from rollouts.models import Application, Rollout, Slot

    app = Application.objects.create(tenant=globex, slug="globex-app", name="Globex secret app")
    Slot.objects.create(application=app, name="globexSlot", artifact=artifact)
    rollout = Rollout.objects.create(
        number=77, tenant=globex, change=change, strategy="canary", salt="globex-salt"
    )
    missing_path = "prompt/no-such-tenant/no-such-artifact"
    # One missing twin per object, whichever parameter names it (answers may echo the id).
    missing_passkey, missing_token, missing_run = (str(uuid.uuid4()) for _ in range(3))
    values = {
        "cls": [("prompt", "prompt")],
        "tenant": [("globex", "no-such-tenant")],
        "application": [("globex-app", "no-such-app")],
        "slug": [
            ("globex-secret-prompt", "no-such-artifact"),
            ("globex", "no-such-tenant"),
            ("globex-app", "no-such-app"),
        ],
        "name": [("globexSlot", "noSuchSlot")],
        "number": [(str(rollout.number), "999999")],  # pages: RO-<int>; the API: either
        "version": [(first.version, "9.9.1")],
        "reference": [
            (change.reference, "CR-2099-9999"),
            (rollout.reference, "RO-999999"),  # also swaps "RO-77" in the rollout API's answers
            (str(change.pk), str(uuid.uuid4())),
            (waiver.reference, "WV-2099-9999"),
            (str(waiver.pk), str(uuid.uuid4())),
        ],
        "action": [(a, a) for a in ACTIONS],
        "seq": [(str(event.seq), "999999")],
        "run_id": [(str(run.pk), missing_run)],
        "token_id": [(str(token.pk), missing_token)],
        "passkey_id": [(str(passkey.pk), missing_passkey)],
        "pk": [
            (str(token.pk), missing_token),
            (str(run.pk), missing_run),
            (str(passkey.pk), missing_passkey),
        ],
    }
    query = [
        ({"ref": first.path}, {"ref": f"{missing_path}/9.9.1"}),
        ({"ref": artifact.path}, {"ref": missing_path}),
        ({"ref": pinned_wrong}, {"ref": f"{missing_path}:9.9.1#{'0' * 64}"}),
        (
            {"ref": "globex-secret-prompt", "tenant": "globex"},
            {"ref": "no-such-artifact", "tenant": "no-such-tenant"},
        ),
        ({"tenant": "globex"}, {"tenant": "no-such-tenant"}),
        ({"change": change.reference}, {"change": "CR-2099-9999"}),
        ({"artifact": artifact.path}, {"artifact": missing_path}),
    ]
    body = (
        {
            "tenant": "globex",
            "artifact": artifact.path,
            "artifacts": [artifact.path],
            "change": change.reference,
            "proposed": [first.path],
            "ref": pinned_wrong,
            "golden_corpus": pinned_wrong,
            "dependencies": [pinned_wrong],
            "title": "A title",
            "rollback_plan": "Roll back.",
        },
        {
            "tenant": "no-such-tenant",
            "artifact": missing_path,
            "artifacts": [missing_path],
            "change": "CR-2099-9999",
            "proposed": [f"{missing_path}/9.9.1"],
            "ref": f"{missing_path}:9.9.1#{'0' * 64}",
            "golden_corpus": f"{missing_path}:9.9.1#{'0' * 64}",
            "dependencies": [f"{missing_path}:9.9.1#{'0' * 64}"],
            "title": "A title",
            "rollback_plan": "Roll back.",
        },
    )
    secrets = [
        artifact.title,
        "GLOBEX-CONTENT",
        first.manifest_sha256[:12],
        second.manifest_sha256[:12],
        second.version,
        owner.username,
        author.username,
        globex.name,
        change.title,
        "Globex rollback plan",
        waiver.justification,
        str(artifact.pk),
        str(first.pk),
        passkey.name,
        passkey.credential_id,
    ]
    return Globex(values=values, secrets=secrets, query=query, body=body)


@pytest.fixture
def acme_user(make_user: Any, acme: Tenant) -> User:
    return make_user(
        "acme-everything",
        acme=["member", "administrator", "reviewer", "privacy_officer", "security_officer"],
    )


def _normalise(body: str, swaps: list[tuple[str, str]]) -> str:
    for foreign, missing in sorted(set(swaps), key=lambda s: -len(s[0])):
        body = re.sub(rf"(?<![\w-]){re.escape(foreign)}(?![\w-])", missing, body)
    body = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", body)
    body = re.sub(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d[0-9:.+Z]*", "<time>", body)
    return re.sub(r'nonce="[^"]*"', "", body)


def _call(client: Any, method: str, url: str, data: dict[str, Any] | None, is_api: bool) -> Any:
    if method == "get":
        return client.get(url, data or {})
    if is_api:
        return getattr(client, method)(url, data or {}, format="json")
    return getattr(client, method)(url, data or {})


def _check(
    client: Any,
    method: str,
    foreign: tuple[str, dict[str, Any] | None],
    missing: tuple[str, dict[str, Any] | None],
    swaps: list[tuple[str, str]],
    world: Globex,
    is_api: bool,
    needs_404: bool,
) -> list[str]:
    got = _call(client, method, foreign[0], foreign[1], is_api)
    ref = _call(client, method, missing[0], missing[1], is_api)
    what = f"{method.upper()} {foreign[0]} {foreign[1] or ''}"
    problems = []
    text = got.content.decode(errors="replace")
    leaked = [s for s in world.secrets if s in text]
    if leaked:
        problems.append(f"{what}: shows {leaked}")
    if got.status_code != ref.status_code:
        problems.append(f"{what}: {got.status_code} but {ref.status_code} for a missing one")
    elif (
        needs_404
        and got.status_code not in (404, 405)
        and not (method == "get" and got.status_code == 302)
    ):
        # A GET of an action address redirects to its object's page, itself walked (a 404).
        problems.append(f"{what}: {got.status_code}, not 404")
    else:
        mine = _normalise(text, swaps).splitlines()
        theirs = _normalise(ref.content.decode(errors="replace"), []).splitlines()
        if mine != theirs:
            diff = [d for d in difflib.unified_diff(theirs, mine, lineterm="", n=0)][2:8]
            problems.append(f"{what}: answers unlike a missing one: {diff}")
    return problems


@pytest.mark.django_db
def test_every_route_answers_another_tenants_identifiers_as_missing(
    globex_world: Globex, acme_user: User, token_client: Any
) -> None:
    session = Client()
    session.force_login(acme_user)
    api = token_client(acme_user)
    problems: list[str] = []
    routes = list(_routes())
    covered = 0
    for route, pattern, params in routes:
        if _allowed(route):
            continue
        is_api = route.startswith("api/")
        client: Client | APIClient = api if is_api else session
        unknown = [p for p in params if p not in globex_world.values]
        assert not unknown, f"{route}: add a globex value for {unknown} to the walker"
        if params:
            choices = [globex_world.values[p] for p in params]
            reached = False
            for combo in itertools.product(*choices):
                foreign_values = {p: f for p, (f, _) in zip(params, combo, strict=True)}
                missing_values = {p: m for p, (_, m) in zip(params, combo, strict=True)}
                url = _url(route, foreign_values)
                if resolve(url).func != pattern.callback:
                    continue  # an earlier route takes these values; it is walked on its own
                reached = True
                swaps = [(f, m) for f, m in combo if f != m]
                for method in METHODS if is_api else PAGE_METHODS:
                    problems += _check(
                        client,
                        method,
                        (url, globex_world.body[0] if method != "get" else None),
                        (
                            _url(route, missing_values),
                            globex_world.body[1] if method != "get" else None,
                        ),
                        swaps + _body_swaps(globex_world),
                        globex_world,
                        is_api,
                        needs_404=True,
                    )
                covered += 1
            assert reached, f"no globex values reach {route}"
        else:
            url = _url(route, {})
            for foreign_q, missing_q in globex_world.query:
                swaps = list(zip(foreign_q.values(), missing_q.values(), strict=True))
                swaps += _body_swaps(globex_world)
                problems += _check(
                    client,
                    "get",
                    (url, foreign_q),
                    (url, missing_q),
                    swaps,
                    globex_world,
                    is_api,
                    False,
                )
            for method in ("post",):
                problems += _check(
                    client,
                    method,
                    (url, globex_world.body[0]),
                    (url, globex_world.body[1]),
                    _body_swaps(globex_world),
                    globex_world,
                    is_api,
                    needs_404=False,
                )
            covered += 1
    assert covered > 60, f"the walker reached only {covered} routes"
    assert not problems, "\n".join(problems)


def _body_swaps(world: Globex) -> list[tuple[str, str]]:
    """Every globex identifier with its missing twin, so that echoed input compares equal."""
    swaps = [
        pair
        for name, pairs in world.values.items()
        for pair in pairs
        if pair[0] != pair[1]
        and name != "seq"  # a small number: swapped only where it is the URL's
    ]
    for key, foreign in world.body[0].items():
        missing = world.body[1][key]
        if isinstance(foreign, list):
            swaps += list(zip(foreign, missing, strict=True))
        else:
            swaps.append((foreign, missing))
    return swaps
