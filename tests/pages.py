"""Helpers for tests that read server-rendered pages."""

from __future__ import annotations

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext


def page_queries(client: Client, url: str) -> tuple[int, str]:
    """GET ``url`` (it must answer 200): how many SQL statements it took, and its HTML."""
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(ctx.captured_queries), response.content.decode()


def between(html: str, start: str, end: str) -> str:
    """The HTML after the first ``start`` up to the next ``end`` (``start`` must be there)."""
    assert start in html, start
    return html.split(start, 1)[1].split(end, 1)[0]
