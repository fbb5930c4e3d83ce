"""API keys and tenant scoping, and the dependency aliases routes use."""

from __future__ import annotations

import hmac
from typing import Annotated

import structlog
from fastapi import Depends, Request

from mlworker.errors import Unauthorized
from mlworker.services.container import Services

#: Tenant of every record when no API keys are configured (single-tenant installs).
DEFAULT_TENANT = "default"


def get_services(request: Request) -> Services:
    """Return the app's services, built in its lifespan."""
    services: Services = request.app.state.services
    return services


async def authenticate(request: Request) -> str:
    """Resolve the caller's tenant from ``Authorization: Bearer <key>``.

    With ``MLWORKER_API_KEYS`` unset every caller is tenant ``default``. Keys are compared in
    constant time. The tenant is bound to the log context of the request.
    """
    settings = get_services(request).settings
    tenant: str | None = DEFAULT_TENANT
    if settings.api_keys:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("send 'Authorization: Bearer <api key>'")
        tenant = None
        for key, key_tenant in settings.api_keys.items():
            if hmac.compare_digest(key.encode(), token.encode()):
                tenant = key_tenant
        if tenant is None:
            raise Unauthorized("invalid API key")
    structlog.contextvars.bind_contextvars(tenant=tenant)
    request.state.tenant = tenant
    return str(tenant)


ServicesDep = Annotated[Services, Depends(get_services)]
TenantDep = Annotated[str, Depends(authenticate)]
