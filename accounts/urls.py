"""Page routes for accounts: tenants, tokens (the home page is the roof's: governance.views.home)."""

from django.urls import path

from accounts import views

urlpatterns = [
    path("tenants/<slug:slug>/", views.tenant_detail, name="tenant-detail"),
    path("tenants/<slug:slug>/grant/", views.tenant_grant, name="tenant-grant"),
    path("tenants/<slug:slug>/revoke/", views.tenant_revoke, name="tenant-revoke"),
    path(
        "tenants/<slug:slug>/service-tokens/",
        views.service_token_create,
        name="tenant-service-token-create",
    ),
    path(
        "tenants/<slug:slug>/service-tokens/<uuid:token_id>/revoke/",
        views.service_token_revoke,
        name="tenant-service-token-revoke",
    ),
    path("account/tokens/", views.tokens, name="tokens"),
    path("account/tokens/<uuid:token_id>/revoke/", views.token_revoke, name="token-revoke"),
    path(
        "account/passkeys/register/begin/",
        views.passkey_register_begin,
        name="passkey-register-begin",
    ),
    path(
        "account/passkeys/register/finish/",
        views.passkey_register_finish,
        name="passkey-register-finish",
    ),
    path("account/passkeys/<uuid:passkey_id>/revoke/", views.passkey_revoke, name="passkey-revoke"),
]
