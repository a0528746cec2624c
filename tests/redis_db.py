"""One Redis database per test run, so that two runs at once (two `make test`, two worktrees)
never flush or read each other's broker queue or runtime generation.

``TEST_REDIS_URL`` names the server (default ``redis://127.0.0.1:6379``). Without a database
number in it, the first test that needs Redis claims a free one of databases 1 to 14: a lock
key ``governance-tests:redis-db:<n>`` in database 0, set only if absent (``SET NX``) and
expiring on its own should the run die; an empty database is preferred, so one a run without
the lock still uses is left alone. The session's end deletes the lock. With a database number
in ``TEST_REDIS_URL`` (``.../8``), that one is used as given (and marked claimed meanwhile).

Tests flush only the database they were given; a claimed database is flushed when it is given
back, so the next run finds it empty.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import pytest

DEFAULT_SERVER = "redis://127.0.0.1:6379"
CLAIMABLE = range(1, 15)
LOCK_KEY = "governance-tests:redis-db:{number}"
LOCK_SECONDS = 4 * 3600  # longer than any run; a run that dies frees its database by then

_owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
_claimed: dict[str, object] = {}  # url, number, server (and given); or problem: no Redis


def _server_and_number(url: str) -> tuple[str, int | None]:
    parts = urlsplit(url)
    path = parts.path.strip("/")
    server = urlunsplit((parts.scheme, parts.netloc, "", parts.query, ""))
    return server, int(path) if path.isdigit() else None


def _database_url(server: str, number: int) -> str:
    parts = urlsplit(server)
    return urlunsplit((parts.scheme, parts.netloc, f"/{number}", parts.query, ""))


def _claim() -> None:
    import redis

    server, given = _server_and_number(os.environ.get("TEST_REDIS_URL") or DEFAULT_SERVER)
    control = redis.Redis.from_url(_database_url(server, 0), socket_connect_timeout=2)
    try:
        control.ping()
        if given is not None:
            control.set(LOCK_KEY.format(number=given), _owner, ex=LOCK_SECONDS)
            _claimed.update(url=_database_url(server, given), number=given, server=server)
            _claimed["given"] = True
            return
        for only_empty in (True, False):
            for number in CLAIMABLE:
                url = _database_url(server, number)
                if only_empty and redis.Redis.from_url(url, socket_connect_timeout=2).dbsize():
                    continue
                if control.set(LOCK_KEY.format(number=number), _owner, nx=True, ex=LOCK_SECONDS):
                    _claimed.update(url=url, number=number, server=server)
                    return
    except redis.RedisError as exc:
        _claimed["problem"] = f"needs Redis at {server} (set TEST_REDIS_URL): {exc}"
        return
    _claimed["problem"] = (
        f"every Redis database {CLAIMABLE.start}-{CLAIMABLE.stop - 1} at {server} is claimed "
        "by another test run (keys governance-tests:redis-db:* in database 0)"
    )


def redis_url() -> str:
    """This run's own Redis database (claimed on first use); skips the test without Redis."""
    if not _claimed:
        _claim()
    if "problem" in _claimed:
        pytest.skip(str(_claimed["problem"]))
    return str(_claimed["url"])


def release() -> None:
    """Give the database back, empty (a database named in TEST_REDIS_URL is left as the tests
    left it): called once, at the session's end."""
    if "url" not in _claimed:
        return
    import redis

    key = LOCK_KEY.format(number=_claimed["number"])
    control = redis.Redis.from_url(_database_url(str(_claimed["server"]), 0))
    try:
        if control.get(key) == _owner.encode():
            if not _claimed.get("given"):
                redis.Redis.from_url(str(_claimed["url"])).flushdb()
            control.delete(key)
    except redis.RedisError:
        pass  # it expires on its own
    _claimed.clear()
