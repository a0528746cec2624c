"""The runtime generation: a number that changes whenever the event log grows.

Every governance state change appends an event, so "the log grew" is exactly "something a
cached answer may depend on changed". Caches of runtime answers and service tokens are
keyed by this number, so a warm answer runs no SQL and a change is seen by every server
process within a second:

- with ``REDIS_URL`` set, the number is a Redis counter (``INCR`` on change; a process
  reads it at most once per ``RUNTIME_GENERATION_MAX_AGE_MS``, 250 ms by default, and at
  once after its own appends, so another process's move is seen within that, well inside
  the promised second, while a warm request rarely pays the Redis round trip);
- otherwise it is the modification time of a small file (``RUNTIME_GENERATION_FILE``),
  bumped by rewriting it (one ``stat`` per request).

It is bumped twice per appending transaction: before the commit (so a test transaction
that never commits still sees its own change) and after it (so an answer built from the
old rows between the two is dropped).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)

REDIS_KEY = "governance:runtime:generation"

_clients: dict[str, Any] = {}


def _redis() -> Any | None:
    url = getattr(settings, "REDIS_URL", "") or ""
    if not url:
        return None
    client = _clients.get(url)
    if client is None:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        _clients[url] = client
    return client


def _path() -> Path:
    return Path(settings.RUNTIME_GENERATION_FILE)


#: (value, read at monotonic ns) of this process's last Redis read; None = read again.
_last_read: tuple[str, int] | None = None


def current() -> str:
    """The generation now (an opaque string; equal means nothing changed)."""
    global _last_read
    client = _redis()
    if client is not None:
        now = time.monotonic_ns()
        held = _last_read
        max_age = int(getattr(settings, "RUNTIME_GENERATION_MAX_AGE_MS", 250)) * 1_000_000
        if held is not None and now - held[1] < max_age:
            return held[0]
        try:
            value = client.get(REDIS_KEY)
            read = "r" + (value.decode() if value else "0")
            _last_read = (read, now)
            return read
        except Exception:  # noqa: BLE001 - Redis down: fall back to the file, never serve stale
            _last_read = None
            log.warning("runtime generation: Redis unreachable, using the file")
    try:
        stat = _path().stat()
    except FileNotFoundError:
        return "f0"
    return f"f{stat.st_mtime_ns}.{stat.st_size}.{stat.st_ino}"


def bump() -> None:
    """Change the generation (both the Redis counter, when configured, and the file)."""
    global _last_read
    _last_read = None  # this process sees its own change at once
    client = _redis()
    if client is not None:
        try:
            client.incr(REDIS_KEY)
        except Exception:  # noqa: BLE001
            log.warning("runtime generation: Redis unreachable, bumping the file only")
    path = _path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(str(time.time_ns()))
        os.replace(tmp, path)
    except OSError:
        log.exception("runtime generation: cannot write %s", path)
