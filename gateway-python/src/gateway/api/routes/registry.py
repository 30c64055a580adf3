# GET /api/registry: the live instances of every service (services/contracts/ring.md). Without
# a registry (no REGISTRY_URL, no REDIS_URL) the answer is the static view: this gateway only.
from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from gateway.api.deps import Services, ServicesDep
from gateway.errors import ApiError
from gateway.models import ErrorResponse, RegistryList
from gateway.money import dumps
from gateway.registry import Entry, RegistryUnavailable

router = APIRouter(tags=["registry"])


async def live_instances(services: Services) -> tuple[str, list[Entry]]:
    """("redis", the live entries) or ("static", [this gateway]); RegistryUnavailable when
    the registry's Redis does not answer."""
    if services.registry is None:
        return "static", [services.self_entry]
    _, entries = await services.registry.live()
    return "redis", entries


@router.get(
    "/api/registry",
    response_model=RegistryList,
    summary="Live service instances, from the registry in Redis",
    description="Every instance whose heartbeat has not expired by Redis's clock"
    " (services/contracts/ring.md, Registry), sorted by name, then instance_id, with"
    ' `source: "redis"`. Without a registry (neither REGISTRY_URL nor REDIS_URL set) the'
    ' answer is still 200: the static view, `source: "static"` and this gateway alone.'
    " 503 `upstream_unavailable` when the registry's Redis does not answer.",
    responses={503: {"model": ErrorResponse, "description": "the registry's Redis is down"}},
)
async def registry_get(services: ServicesDep) -> Response:
    try:
        source, entries = await live_instances(services)
    except RegistryUnavailable:
        raise ApiError("upstream_unavailable", "registry unavailable") from None
    body: dict[str, Any] = {"source": source, "instances": [e.to_dict() for e in entries]}
    return Response(dumps(body), media_type="application/json")
