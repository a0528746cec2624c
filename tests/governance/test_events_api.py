"""The event log over the API: visibility, filters, cursor pages, proofs that verify, keys, verification."""

from __future__ import annotations

import pytest

from accounts import services as accounts
from governance.kernel import merkle
from governance.kernel.events.kinds import EventKind
from governance.kernel.events.models import Event, VerificationRun
from governance.kernel.events.services import checkpoint_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(acme, globex, make_user):
    make_user("acme-boss", acme="administrator")
    make_user("globex-boss", globex="administrator")
    for i in range(3):
        accounts.role_grant(user=make_user(f"a{i}"), role="reviewer", tenant=acme, actor=None)
        accounts.role_grant(user=make_user(f"g{i}"), role="reviewer", tenant=globex, actor=None)


def seqs(body):
    return [e["seq"] for e in body["results"]]


@pytest.mark.usefixtures("world")
def test_members_see_only_their_tenants_events(make_user, token_client):
    client = token_client(make_user("rev", acme="reviewer"))
    body = client.get("/api/v1/events/").json()
    assert body["results"], body
    assert {e["tenant"] for e in body["results"]} <= {"acme", None}
    assert all(e["tenant"] == "acme" or e["actor"]["username"] == "rev" for e in body["results"])
    globex_event = Event.objects.filter(tenant__slug="globex").first()
    assert client.get(f"/api/v1/events/{globex_event.seq}/").status_code == 404
    assert client.get(f"/api/v1/events/{globex_event.seq}/proof/").status_code == 404


@pytest.mark.usefixtures("world")
def test_platform_admin_sees_everything_newest_first_in_cursor_pages(make_user, token_client):
    root = make_user("root")
    accounts.role_grant(user=root, role="administrator", tenant=None, actor=None)
    client = token_client(root)
    first = client.get("/api/v1/events/?page_size=5").json()
    total = Event.objects.count()
    assert seqs(first) == list(range(total, total - 5, -1))
    second = client.get(first["next"]).json()
    assert seqs(second) == list(range(total - 5, total - 10, -1))


@pytest.mark.usefixtures("world")
def test_filters(make_user, token_client):
    root = make_user("root")
    accounts.role_grant(user=root, role="administrator", tenant=None, actor=None)
    client = token_client(root)
    granted = client.get("/api/v1/events/?kind=role.granted&tenant=globex").json()["results"]
    assert len(granted) == 4
    assert all(e["kind"] == "role.granted" and e["tenant"] == "globex" for e in granted)
    by_actor = client.get("/api/v1/events/?actor=root").json()["results"]
    assert by_actor == []  # root has not acted yet
    grant = Event.objects.filter(kind=EventKind.ROLE_GRANTED).first()
    by_subject = client.get(
        f"/api/v1/events/?subject_type=accounts.rolegrant&subject_id={grant.subject_id}"
    ).json()
    assert seqs(by_subject) == [grant.seq]
    bad = client.get("/api/v1/events/?kind=nope")
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "kind"
    bad_time = client.get("/api/v1/events/?since=yesterday")
    assert bad_time.status_code == 400
    assert bad_time.json()["error"]["field"] == "since"


@pytest.mark.usefixtures("world")
def test_feed_query_count_does_not_grow_with_page_size(
    make_user, token_client, django_assert_max_num_queries
):
    root = make_user("root")
    accounts.role_grant(user=root, role="administrator", tenant=None, actor=None)
    client = token_client(root)
    client.get("/api/v1/events/?page_size=2")
    with django_assert_max_num_queries(10) as small:
        assert len(client.get("/api/v1/events/?page_size=2").json()["results"]) == 2
    with django_assert_max_num_queries(len(small.captured_queries)):
        assert len(client.get("/api/v1/events/?page_size=15").json()["results"]) == 15


@pytest.mark.usefixtures("world")
def test_event_detail_has_the_signed_bytes(make_user, token_client):
    client = token_client(make_user("rev", acme="reviewer"))
    event = Event.objects.filter(tenant__slug="acme").last()
    body = client.get(f"/api/v1/events/{event.seq}/").json()
    assert body["canonical_header"].encode() == bytes(event.header)
    assert body["entry_hash"] == event.entry_hash
    assert body["signature"] == event.signature


@pytest.mark.usefixtures("world")
def test_inclusion_and_consistency_proofs_verify_against_a_checkpoint(make_user, token_client):
    client = token_client(make_user("rev", acme="reviewer"))
    old = checkpoint_create()
    accounts.role_grant(user=make_user("late"), role="reviewer", tenant=acme_of(), actor=None)
    new = checkpoint_create()
    assert old
    assert new
    assert new.tree_size > old.tree_size
    event = Event.objects.filter(tenant__slug="acme").order_by("seq").first()
    proof = client.get(f"/api/v1/events/{event.seq}/proof/?size={old.tree_size}").json()
    assert proof["root_hash"] == old.root_hash
    assert merkle.verify_inclusion(
        bytes.fromhex(proof["leaf_hash"]),
        proof["leaf_index"],
        proof["tree_size"],
        [bytes.fromhex(p) for p in proof["audit_path"]],
        bytes.fromhex(old.root_hash),
    )
    consistency = client.get(
        f"/api/v1/checkpoints/consistency/?from={old.tree_size}&to={new.tree_size}"
    ).json()
    assert (consistency["first_root"], consistency["second_root"]) == (old.root_hash, new.root_hash)
    assert merkle.verify_consistency(
        old.tree_size,
        new.tree_size,
        bytes.fromhex(old.root_hash),
        bytes.fromhex(new.root_hash),
        [bytes.fromhex(p) for p in consistency["proof"]],
    )
    for path, field in [
        (f"/api/v1/events/{event.seq}/proof/?size=0", "size"),
        (f"/api/v1/events/{event.seq}/proof/?size=abc", "size"),
        ("/api/v1/checkpoints/consistency/", "from"),
        (f"/api/v1/checkpoints/consistency/?from={new.tree_size + 5}", "from"),
    ]:
        resp = client.get(path)
        assert resp.status_code == 400, path
        assert resp.json()["error"]["field"] == field, path


def acme_of():
    from accounts.models import Tenant

    return Tenant.objects.get(slug="acme")


@pytest.mark.usefixtures("world")
def test_checkpoints_list_and_create(make_user, token_client):
    root = make_user("root")
    accounts.role_grant(user=root, role="administrator", tenant=None, actor=None)
    reviewer = token_client(make_user("rev", acme="reviewer"))
    assert reviewer.post("/api/v1/checkpoints/").status_code == 403
    admin = token_client(root)
    made = admin.post("/api/v1/checkpoints/")
    assert made.status_code == 201
    assert made.json()["size"] == Event.objects.count()
    again = admin.post("/api/v1/checkpoints/")
    assert again.status_code == 200
    assert again.json()["size"] == made.json()["size"]
    listing = reviewer.get("/api/v1/checkpoints/").json()["results"]
    assert [c["size"] for c in listing] == [made.json()["size"]]
    assert (
        listing[0]["body"]
        == f'{{"root":"{listing[0]["root"]}","size":{listing[0]["size"]},"time":"{listing[0]["time"]}"}}'
    )


@pytest.mark.usefixtures("world")
def test_public_keys_need_no_login(api):
    keys = api.get("/api/v1/keys/").json()
    assert len(keys) == 1
    assert keys[0]["status"] == "active"
    assert len(keys[0]["public_key"]) == 64


@pytest.mark.usefixtures("world")
def test_verification_over_the_api(make_user, token_client, django_capture_on_commit_callbacks):
    from governance.celery import app

    app.conf.task_always_eager = True  # unit test: run inline; tests/integration uses a real worker
    try:
        reviewer = token_client(make_user("rev", acme="reviewer"))
        assert reviewer.post("/api/v1/events/verify/").status_code == 403
        assert reviewer.get("/api/v1/events/verify/").status_code == 404
        admin = token_client(make_user("boss2", acme="administrator"))
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            queued = admin.post("/api/v1/events/verify/")
        assert queued.status_code == 202
        assert queued.json()["status"] == "queued"
        assert len(callbacks) == 1  # the task is sent only once the transaction commits
        assert reviewer.get("/api/v1/events/verify/").status_code == 404  # not their run
        latest = admin.get("/api/v1/events/verify/").json()
        assert latest["id"] == queued.json()["id"]
        assert latest["status"] == "passed"
        assert latest["checked"] == latest["total"] == Event.objects.count()
        assert latest["reason"] == f"OK: {latest['checked']} events verified"
        assert VerificationRun.objects.get().requested_by.username == "boss2"
    finally:
        app.conf.task_always_eager = False


def test_openapi_lists_the_event_log_endpoints(api):
    import json

    schema = json.loads(
        api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").content
    )
    assert {
        "/api/v1/events/",
        "/api/v1/events/{seq}/",
        "/api/v1/events/{seq}/proof/",
        "/api/v1/events/verify/",
        "/api/v1/checkpoints/",
        "/api/v1/checkpoints/consistency/",
        "/api/v1/keys/",
    } <= set(schema["paths"])
