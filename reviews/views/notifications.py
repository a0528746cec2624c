"""My notifications: the list (open first, resolved shown as resolved), opening one, mark all read."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods

from governance.kernel.notifications import (
    notification_mark_read,
    notification_open,
    notifications_of,
)
from reviews.views.common import user_of

PAGE_SIZE = 50


@login_required
@require_http_methods(["GET", "POST"])
def notifications(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    if request.method == "POST":
        count = notification_mark_read(user=user)
        messages.success(request, f"Marked {count} notification(s) read.")
        return redirect("reviews:notifications")
    page = Paginator(notifications_of(user), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "reviews/notifications.html", {"page": page, "query": ""})


@login_required
@require_http_methods(["GET", "POST"])
def notification_open_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Follow a notification's link: it is marked read, then on to where it is acted on.

    Only its owner may open it (anyone else: 404, through the domain error middleware).
    A GET marks it read too: the link is an ordinary link, and marking read is idempotent.
    """
    note = notification_open(user=user_of(request), notification_id=pk)
    target = note.url
    if not target or not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect("reviews:notifications")
    return redirect(target)
