"""API keys and tenant scoping, and the dependency aliases routes use."""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Annotated

import structlog
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mlworker.errors import Unauthorized
from mlworker.services.container import Services

#: Tenant of every record when no API keys are configured (single-tenant installs).
DEFAULT_TENANT = "default"


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_services(request: Request) -> Services:
    """Return the app's services, built in its lifespan.

    ``async`` although it does no I/O: FastAPI runs a plain ``def`` dependency in the thread
    pool, and that hop on every request cost scoring throughput.
    """
    return _services(request)


#: Declares the bearer scheme in the OpenAPI document (``security`` on every route that needs
#: a key, the Swagger UI's *Authorize* button); :func:`authenticate` does the checking.
BEARER = HTTPBearer(auto_error=False, description="An API key from `MLWORKER_API_KEYS`.")


def _tenant_of(keys: dict[str, str], token: str) -> str | None:
    """Return the tenant of ``token``, comparing against every key in constant time."""
    tenant = None
    for key, key_tenant in keys.items():
        if hmac.compare_digest(key.encode(), token.encode()):
            tenant = key_tenant
    return tenant


async def authenticate(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)] = None,
) -> str:
    """Resolve the caller's tenant from ``Authorization: Bearer <key>``.

    With ``MLWORKER_API_KEYS`` unset every caller is tenant ``default``. Keys are compared in
    constant time. The tenant is bound to the log context of the request.
    """
    settings = _services(request).settings
    tenant: str | None = DEFAULT_TENANT
    if settings.api_keys:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("send 'Authorization: Bearer <api key>'")
        tenant = _tenant_of(settings.api_keys, token)
        if tenant is None:
            raise Unauthorized("invalid API key")
    structlog.contextvars.bind_contextvars(tenant=tenant)
    request.state.tenant = tenant
    return str(tenant)


_DOCS_CHALLENGE = {"WWW-Authenticate": 'Basic realm="ML Worker API documentation", charset="UTF-8"'}


def authenticate_docs(request: Request) -> None:
    """Guard ``/docs``, ``/redoc`` and ``/openapi.json`` when API keys are set.

    Accepts ``Authorization: Bearer <key>`` (scripts, curl) or HTTP Basic with any user name and
    the key as the password: a browser cannot add a bearer header to a page it navigates to, but
    it prompts for Basic credentials on the 401 this answers and resends them for the document
    the Swagger UI then fetches. ``MLWORKER_PUBLIC_DOCS=true`` opens the three routes again.
    """
    settings = request.app.state.settings
    if not settings.api_keys or settings.public_docs:
        return
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    token = value.strip()
    if scheme.lower() == "basic":
        try:
            token = base64.b64decode(token, validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            token = ""
    elif scheme.lower() != "bearer":
        token = ""
    if not token or _tenant_of(settings.api_keys, token) is None:
        raise HTTPException(
            401,
            "the API documentation needs an API key: 'Authorization: Bearer <key>', or the key "
            "as the password of HTTP Basic authentication",
            headers=_DOCS_CHALLENGE,
        )


ServicesDep = Annotated[Services, Depends(get_services)]
TenantDep = Annotated[str, Depends(authenticate)]
