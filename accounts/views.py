"""Pages: home ("what needs my attention"), a tenant's members, access and service tokens,
personal tokens."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import selectors, services
from accounts.forms import (
    RoleGrantForm,
    RoleRevokeForm,
    ServiceTokenCreateForm,
    ServiceTokenRevokeForm,
    TokenCreateForm,
)
from accounts.models import Tenant, User
from accounts.permissions import can_manage_access, can_manage_service_tokens
from governance.kernel.errors import DomainError, NotFound


def _tenant_or_404(request: HttpRequest, slug: str) -> Tenant:
    try:
        return selectors.tenant_for_user(request.user, slug)
    except NotFound as exc:
        raise Http404(exc.message) from exc


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "home.html",
        {
            "access": selectors.access_by_tenant(request.user),
            "platform_admin": selectors.is_platform_admin(request.user),
        },
    )


def _tenant_page(
    request: HttpRequest,
    tenant: Tenant,
    grant_form: RoleGrantForm | None = None,
    status: int = 200,
    service_token_form: ServiceTokenCreateForm | None = None,
    new_service_token: str | None = None,
) -> HttpResponse:
    roles = selectors.roles_in_tenant(request.user, tenant)
    manage_tokens = can_manage_service_tokens(request.user, tenant)
    return render(
        request,
        "accounts/tenant_detail.html",
        {
            "tenant": tenant,
            "my_roles": sorted(roles),
            "can_manage": can_manage_access(request.user, tenant),
            "members": selectors.active_members(tenant),
            "history": selectors.grant_history(tenant)[:50],
            "grant_form": grant_form or RoleGrantForm(),
            "can_manage_tokens": manage_tokens,
            "service_tokens": selectors.service_tokens_of(tenant) if manage_tokens else [],
            "service_token_form": service_token_form or ServiceTokenCreateForm(),
            "new_service_token": new_service_token,
        },
        status=status,
    )


@login_required
def tenant_detail(request: HttpRequest, slug: str) -> HttpResponse:
    return _tenant_page(request, _tenant_or_404(request, slug))


@login_required
@require_POST
def tenant_grant(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = _tenant_or_404(request, slug)
    form = RoleGrantForm(request.POST)
    if form.is_valid():
        try:
            grant, created = services.role_grant(
                user=form.cleaned_data["username"],
                role=form.cleaned_data["role"],
                tenant=tenant,
                actor=request.user,  # type: ignore[arg-type]
                reason=form.cleaned_data["reason"],
            )
        except DomainError as exc:
            if exc.field in form.fields:
                form.add_error(exc.field, exc.message)
            else:
                messages.error(request, exc.message)
            return _tenant_page(request, tenant, grant_form=form, status=exc.status_code)
        verb = "Granted" if created else "Already held:"
        messages.success(request, f"{verb} {grant.get_role_display()} to {grant.user} in {tenant}.")
        return redirect(tenant)
    return _tenant_page(request, tenant, grant_form=form, status=400)


@login_required
@require_POST
def tenant_revoke(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = _tenant_or_404(request, slug)
    form = RoleRevokeForm(request.POST)
    if not form.is_valid():
        problems = "; ".join(
            f"{name}: {' '.join(str(e) for e in errors)}" for name, errors in form.errors.items()
        )
        messages.error(request, f"Not revoked. {problems}")
        return _tenant_page(request, tenant, status=400)
    try:
        grant = services.role_revoke(
            user=form.cleaned_data["username"],
            role=form.cleaned_data["role"],
            tenant=tenant,
            actor=request.user,  # type: ignore[arg-type]
            reason=form.cleaned_data["reason"],
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return _tenant_page(request, tenant, status=exc.status_code)
    messages.success(request, f"Revoked {grant.get_role_display()} from {grant.user} in {tenant}.")
    return redirect(tenant)


@login_required
@require_POST
def service_token_create(request: HttpRequest, slug: str) -> HttpResponse:
    """Create a service token and show it once, on the tenant page itself (never in a redirect)."""
    tenant = _tenant_or_404(request, slug)
    form = ServiceTokenCreateForm(request.POST)
    if not form.is_valid():
        return _tenant_page(request, tenant, service_token_form=form, status=400)
    try:
        token, raw = services.service_token_create(
            tenant=tenant,
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_at=form.cleaned_data["expires_at"],
            actor=request.user,  # type: ignore[arg-type]
        )
    except DomainError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return _tenant_page(request, tenant, service_token_form=form, status=exc.status_code)
    messages.success(request, f"Service token {token.prefix}… created for {token.name}.")
    return _tenant_page(request, tenant, new_service_token=raw)


@login_required
@require_POST
def service_token_revoke(request: HttpRequest, slug: str, token_id: str) -> HttpResponse:
    tenant = _tenant_or_404(request, slug)
    token = selectors.service_tokens_of(tenant).filter(pk=token_id).first()
    if token is None:
        raise Http404("No such service token.")
    form = ServiceTokenRevokeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Not revoked: say why.")
        return _tenant_page(request, tenant, status=400)
    try:
        services.service_token_revoke(
            token=token,
            actor=request.user,  # type: ignore[arg-type]
            reason=form.cleaned_data["reason"],
        )
    except DomainError as exc:
        messages.error(request, exc.message)
        return _tenant_page(request, tenant, status=exc.status_code)
    messages.success(request, f"Service token {token.prefix}… revoked.")
    return redirect(tenant)


@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    form = TokenCreateForm(request.POST or None)
    new_token = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                _, new_token = services.token_create(
                    user=user,
                    name=form.cleaned_data["name"],
                    expires_days=form.cleaned_data["expires_days"],
                    actor=user,
                )
            except DomainError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
                status = 400
            else:
                form = TokenCreateForm()
        else:
            status = 400
    return render(
        request,
        "accounts/tokens.html",
        {"form": form, "tokens": selectors.tokens_of(user), "new_token": new_token},
        status=status,
    )


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: str) -> HttpResponse:
    token = selectors.tokens_of(request.user).filter(pk=token_id).first()  # type: ignore[arg-type]
    if token is None:
        raise Http404("No such token.")
    try:
        services.token_revoke(token=token, actor=request.user)  # type: ignore[arg-type]
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Token {token.prefix}… revoked.")
    return redirect("tokens")
