"""Which channel (session, API token, CLI, task) the current change came through.

Set by the request middleware, the token authentication, management commands
and tasks; read by ``event_record`` so every event says how it arrived
without every service having to pass it along.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponse

_channel: ContextVar[str] = ContextVar("governance_channel", default="")


def current_channel() -> str:
    return _channel.get()


def set_channel(value: str) -> None:
    _channel.set(value[:100])


@contextlib.contextmanager
def channel(value: str) -> Iterator[None]:
    token = _channel.set(value[:100])
    try:
        yield
    finally:
        _channel.reset(token)


class ChannelMiddleware:
    """Marks web requests as ``session:<hash prefix>``; the token auth overrides it for API tokens."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = getattr(getattr(request, "session", None), "session_key", None)
        value = f"session:{hashlib.sha256(key.encode()).hexdigest()[:12]}" if key else "web"
        token = _channel.set(value)
        try:
            return self.get_response(request)
        finally:
            _channel.reset(token)
