# GET /api/stats: the gateway's own numbers plus live stats of pricing and inventory, each
# upstream slot {"status": "unavailable"} when it cannot be reached, and the number of live
# instances per service from the registry (one Lua call, run beside the upstream calls).
from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from gateway.api.deps import Services, ServicesDep
from gateway.api.routes.registry import live_instances
from gateway.context import current
from gateway.models import Stats
from gateway.money import dumps

log = logging.getLogger("gateway.stats")
router = APIRouter(tags=["stats"])
UNAVAILABLE = {"status": "unavailable"}


def _slot(result: dict[str, Any] | BaseException, upstream: str) -> dict[str, Any]:
    if isinstance(result, BaseException):
        if not isinstance(result, Exception):
            raise result
        log.warning("stats_unavailable", extra={"upstream": upstream, "error": str(result)})
        return UNAVAILABLE
    return result


async def _instance_counts(services: Services) -> dict[str, Any]:
    _, entries = await live_instances(services)
    return dict(sorted(Counter(e.name for e in entries).items()))


@router.get("/api/stats", response_model=Stats, summary="Live numbers of the three services")
async def stats_get(services: ServicesDep) -> Response:
    ctx = current()
    deadline = ctx.deadline if ctx is not None else None
    results = await asyncio.gather(
        services.pricing.stats(deadline),
        services.inventory.stats(deadline),
        _instance_counts(services),
        return_exceptions=True,
    )
    pricing, inventory, registry = results
    body = {
        "api_gateway": {
            "service": "api-gateway",
            "language": "Python",
            "uptime": round(time.monotonic() - services.started_at, 1),
        },
        "pricing_service": _slot(pricing, "pricing"),
        "inventory_service": _slot(inventory, "inventory"),
        "registry": _slot(registry, "registry"),
    }
    return Response(dumps(body), media_type="application/json")
