"""Pages of the reviews app."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.selectors import access_by_tenant


@login_required
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "reviews/index.html", {"access": access_by_tenant(request.user)})
