"""My notifications."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from governance.kernel.models import Notification
from governance.kernel.notifications import notification_mark_read
from reviews.views.common import user_of


@login_required
@require_http_methods(["GET", "POST"])
def notifications(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    if request.method == "POST":
        count = notification_mark_read(user=user)
        messages.success(request, f"Marked {count} notification(s) read.")
        return redirect("reviews:notifications")
    rows = Notification.objects.filter(user=user).select_related("tenant").order_by("-created_at")
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "reviews/notifications.html",
        {"page": page, "query": ""},
    )
