"""Pages of the reviews app (being written)."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.selectors import access_by_tenant


@login_required
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "reviews/index.html", {"access": access_by_tenant(request.user)})


def _todo(request: HttpRequest, **kwargs: str) -> HttpResponse:
    raise Http404("not yet")


change_list = change_new = change_detail = change_edit = change_record = change_action = _todo
confirm_password = rollback = policy = notifications = _todo
