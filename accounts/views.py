"""Pages: a tenant's members, access and service tokens,
personal tokens and passkeys (the account page)."""

from __future__ import annotations

import json
from typing import Any, TypedDict

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from typing_extensions import Unpack

from accounts import selectors, services
from accounts.authentication import user_of
from accounts.forms import (
    PasskeyRevokeForm,
    RoleGrantForm,
    RoleRevokeForm,
    ServiceTokenCreateForm,
    ServiceTokenRevokeForm,
    TokenCreateForm,
)
from accounts.models import ApiToken, Passkey, RoleGrant, ServiceToken, Tenant
from accounts.passkeys import relying_party
from accounts.permissions import can_manage_access, can_manage_service_tokens
from accounts.services.passkeys import can_revoke
from governance.kernel import reauth
from governance.kernel.errors import DomainError
from governance.kernel.views import (
    attempt,
    json_action,
    json_body,
    post_only,
    say_above,
    submit,
)


def _tenant_or_404(request: HttpRequest, slug: str) -> Tenant:
    """The tenant this person sees (a NotFound is the 404 page: DomainErrorMiddleware)."""
    return selectors.tenant_for_user(request.user, slug)


class _Shown(TypedDict, total=False):
    """What a POST puts on the tenant page: its bound form, or the token created just now."""

    grant_form: RoleGrantForm
    service_token_form: ServiceTokenCreateForm
    new_service_token: str


def _tenant_page(
    request: HttpRequest, tenant: Tenant, *, status: int = 200, **shown: Unpack[_Shown]
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
            "reauth_fresh": reauth.recently_confirmed(request),
            "members": selectors.active_members(tenant),
            "history": selectors.grant_history(tenant)[:50],
            "grant_form": shown.get("grant_form") or RoleGrantForm(),
            "can_manage_tokens": manage_tokens,
            "service_tokens": selectors.service_tokens_of(tenant) if manage_tokens else [],
            "service_token_form": shown.get("service_token_form") or ServiceTokenCreateForm(),
            "new_service_token": shown.get("new_service_token"),
        },
        status=status,
    )


@login_required
def tenant_detail(request: HttpRequest, slug: str) -> HttpResponse:
    return _tenant_page(request, _tenant_or_404(request, slug))


@login_required
@post_only("tenant-detail", "slug")
def tenant_grant(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = _tenant_or_404(request, slug)
    form = RoleGrantForm(request.POST)

    def grant(data: dict[str, Any]) -> tuple[RoleGrant, bool]:
        return services.role_grant(
            user=data["username"],
            role=data["role"],
            tenant=tenant,
            actor=user_of(request),
            reason=data["reason"],
        )

    done = submit(form, grant, invalid_status=400)
    if not done.ok or done.result is None:
        # A refusal that names no field is said above the page: someone who may not grant
        # is shown no form.
        say_above(request, form, unplaced_only=True)
        return _tenant_page(request, tenant, grant_form=form, status=done.status)
    granted, created = done.result
    verb = "Granted" if created else "Already held:"
    messages.success(request, f"{verb} {granted.get_role_display()} to {granted.user} in {tenant}.")
    return redirect(tenant)


@login_required
@post_only("tenant-detail", "slug")
def tenant_revoke(request: HttpRequest, slug: str) -> HttpResponse:
    tenant = _tenant_or_404(request, slug)
    form = RoleRevokeForm(request.POST)
    if not form.is_valid():
        problems = "; ".join(
            f"{name}: {' '.join(str(e) for e in errors)}" for name, errors in form.errors.items()
        )
        messages.error(request, f"Not revoked. {problems}")
        return _tenant_page(request, tenant, status=400)
    data = form.cleaned_data

    def revoke() -> RoleGrant:
        # A deliberate act: who may (the service's predicate, so a refusal says why), then
        # the password (unless confirmed lately).
        can_manage_access(user_of(request), tenant).require()
        reauth.require_password(request, request.POST.get("password"))
        return services.role_revoke(
            user=data["username"],
            role=data["role"],
            tenant=tenant,
            actor=user_of(request),
            reason=data["reason"],
        )

    done = attempt(request, revoke)
    if not done.ok or done.result is None:  # a button in the members list: no form
        return _tenant_page(request, tenant, status=done.status)
    grant = done.result
    messages.success(request, f"Revoked {grant.get_role_display()} from {grant.user} in {tenant}.")
    return redirect(tenant)


@login_required
@post_only("tenant-detail", "slug")
def service_token_create(request: HttpRequest, slug: str) -> HttpResponse:
    """Create a service token and show it once, on the tenant page itself (never in a redirect)."""
    tenant = _tenant_or_404(request, slug)
    form = ServiceTokenCreateForm(request.POST)

    def create(data: dict[str, Any]) -> tuple[ServiceToken, str]:
        return services.service_token_create(
            tenant=tenant,
            name=data["name"],
            scopes=data["scopes"],
            expires_at=data["expires_at"],
            actor=user_of(request),
        )

    done = submit(form, create, invalid_status=400)
    if not done.ok or done.result is None:
        return _tenant_page(request, tenant, service_token_form=form, status=done.status)
    token, raw = done.result
    messages.success(request, f"Service token {token.prefix}… created for {token.name}.")
    return _tenant_page(request, tenant, new_service_token=raw)


@login_required
@post_only("tenant-detail", "slug")
def service_token_revoke(request: HttpRequest, slug: str, token_id: str) -> HttpResponse:
    tenant = _tenant_or_404(request, slug)
    token = selectors.service_tokens_of(tenant).filter(pk=token_id).first()
    if token is None:
        raise Http404("No such service token.")
    form = ServiceTokenRevokeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Not revoked: say why.")
        return _tenant_page(request, tenant, status=400)
    reason = form.cleaned_data["reason"]
    done = attempt(
        request,
        lambda: services.service_token_revoke(token=token, actor=user_of(request), reason=reason),
    )
    if not done.ok:  # a button in the token list: no form
        return _tenant_page(request, tenant, status=done.status)
    messages.success(request, f"Service token {token.prefix}… revoked.")
    return redirect(tenant)


@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    form = TokenCreateForm(request.POST or None)
    new_token = None
    status = 200
    if request.method == "POST":

        def create(data: dict[str, Any]) -> tuple[ApiToken, str]:
            return services.token_create(
                user=user, name=data["name"], expires_days=data["expires_days"], actor=user
            )

        done = submit(form, create)
        if done.ok and done.result is not None:
            _, new_token = done.result
            form = TokenCreateForm()
        else:
            status = 400  # an invalid form and a refusal alike
    return render(
        request,
        "accounts/tokens.html",
        {
            "form": form,
            "tokens": selectors.tokens_of(user),
            "new_token": new_token,
            "passkeys": list(selectors.passkeys_of(user)),
            "reauth_fresh": reauth.recently_confirmed(request),
        },
        status=status,
    )


@login_required
@post_only("tokens")
def token_revoke(request: HttpRequest, token_id: str) -> HttpResponse:
    token = selectors.tokens_of(user_of(request)).filter(pk=token_id).first()
    if token is None:
        raise Http404("No such token.")
    done = attempt(request, lambda: services.token_revoke(token=token, actor=user_of(request)))
    if done.ok:
        messages.success(request, f"Token {token.prefix}… revoked.")
    return redirect("tokens")


# -- Passkeys: the account page's ceremony (static/js/passkeys.js) and revocation ---------------

#: The service calls the challenge "challenge"; the browser sends "challenge_id".
_CEREMONY_FIELDS = {"challenge": "challenge_id"}


def _passkey_json(passkey: Passkey) -> dict[str, Any]:
    return {
        "id": str(passkey.pk),
        "name": passkey.name,
        "credential_id": passkey.credential_id,
        "algorithm": passkey.algorithm,
        "created_at": passkey.created_at.isoformat(),
    }


@post_only("tokens")
@json_action(aliases=_CEREMONY_FIELDS)
def passkey_register_begin(request: HttpRequest) -> dict[str, Any]:
    """Step one: the options for ``navigator.credentials.create`` and the challenge's id.

    Deliberate, as on the API: a key that will sign approvals in your name is added only with
    your password (unless confirmed lately), so a borrowed session cannot add one."""
    password = json_body(request).get("password")
    reauth.require_password(request, password if isinstance(password, str) else None)
    challenge, options = services.passkey_registration_begin(
        user=user_of(request), party=relying_party(request)
    )
    return {"challenge_id": str(challenge.pk), "options": json.loads(options)}


@post_only("tokens")
@json_action(aliases=_CEREMONY_FIELDS)
def passkey_register_finish(request: HttpRequest) -> tuple[dict[str, Any], int]:
    """Step two: the authenticator's new credential answers the challenge; the key is logged."""
    body = json_body(request)
    challenge_id = body.get("challenge_id")
    if not isinstance(challenge_id, str) or not challenge_id:
        raise DomainError("Say which challenge this answers.", field="challenge_id")
    credential = body.get("credential")
    if not isinstance(credential, dict):
        raise DomainError(
            "The credential must be the JSON object the browser made.", field="credential"
        )
    name = body.get("name", "")
    if not isinstance(name, str):
        raise DomainError("The name must be text.", field="name")
    passkey = services.passkey_register(
        user=user_of(request), challenge_id=challenge_id, credential=credential, name=name
    )
    messages.success(request, f"Passkey '{passkey.name}' added: you can sign off with it.")
    return {"passkey": _passkey_json(passkey)}, 201


def _back_from_revoke(request: HttpRequest, passkey: Passkey) -> str:
    """Back where the revocation was asked: the person's own account page, or (an
    administrator revoking someone else's) the page named by ``next`` when it is ours."""
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    if passkey.user_id == request.user.pk:
        return f"{reverse('tokens')}#passkeys"
    return reverse("admin:accounts_passkey_changelist") + f"?user__id__exact={passkey.user_id}"


@login_required
@post_only("tokens")
def passkey_revoke(request: HttpRequest, passkey_id: str) -> HttpResponse:
    """Revoke a passkey (its owner, or a platform administrator): deliberate, so the password
    first (unless confirmed lately). Someone who may not revoke it finds no such passkey."""
    actor = user_of(request)
    passkey = Passkey.objects.select_related("user").filter(pk=passkey_id).first()
    if passkey is None or not can_revoke(actor, passkey):
        raise Http404("No such passkey.")
    form = PasskeyRevokeForm(request.POST, needs_password=not reauth.recently_confirmed(request))

    def revoke(data: dict[str, Any]) -> Passkey:
        reauth.require_password(request, data.get("password"))
        return services.passkey_revoke(passkey=passkey, actor=actor, reason=data["reason"])

    done = submit(form, revoke, invalid_status=400)
    if done.result is None:
        say_above(request, form)  # a button in the list: its refusal is said above the page
    else:
        owner = "" if passkey.user_id == actor.pk else f" of {passkey.user.username}"
        messages.success(
            request,
            f"Passkey '{passkey.name}'{owner} revoked: it signs nothing more, and approvals "
            "it signed no longer count.",
        )
    return redirect(_back_from_revoke(request, passkey))
