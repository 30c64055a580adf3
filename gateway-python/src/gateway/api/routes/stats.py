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


def _served(services: Services) -> dict[str, Any]:
    """The gateway's own request count and mean latency (its server histogram, probes
    excluded), and each upstream's breaker state: read here, never on the request path."""
    count = total = 0.0
    for metric in services.metrics.server.collect():
        for sample in metric.samples:
            if sample.name.endswith("_count"):
                count += sample.value
            elif sample.name.endswith("_sum"):
                total += sample.value
    return {
        "requests_processed": int(count),
        "avg_response_time_us": round(total / count * 1e6, 1) if count else 0.0,
        "breakers": {u.name: u.breaker.state for u in services.upstreams},
    }


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
            **_served(services),
        },
        "pricing_service": _slot(pricing, "pricing"),
        "inventory_service": _slot(inventory, "inventory"),
        "registry": _slot(registry, "registry"),
    }
    return Response(dumps(body), media_type="application/json")
