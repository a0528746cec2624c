"""Describes the bearer token schemes (personal and service tokens) to drf-spectacular."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from typing_extensions import override


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    @override
    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "Personal API token"}


class ServiceTokenScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ServiceTokenAuthentication"
    name = "serviceTokenAuth"

    @override
    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "Service token of a tenant (gsv_…) with scopes such as runtime:read; "
                "created by the tenant's administrators, shown once."
            ),
        }


class ServiceOrPersonalTokenScheme(ServiceTokenScheme):
    """Endpoints people and machines both read (the runtime): a name of its own, since
    drf-spectacular keys a security scheme by its authentication class."""

    target_class = "accounts.authentication.ServiceOrPersonalTokenAuthentication"
    name = "runtimeTokenAuth"

    @override
    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "A service token of the tenant (gsv_…, scope runtime:read) or a person's "
                "personal token (gov_…) for a tenant they belong to."
            ),
        }
