# Liveness, readiness (the gateway's own store only, never upstreams) and Prometheus metrics.
from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from gateway import __version__
from gateway.api.deps import ServicesDep
from gateway.models import Health, Ready
from gateway.money import dumps
from gateway.store import StoreUnavailable

router = APIRouter(tags=["health"])
JSON = "application/json"


@router.get("/health", response_model=Health, summary="Liveness; touches no dependency")
async def health() -> Response:
    return Response(
        dumps({"status": "ok", "service": "gateway", "version": __version__}), media_type=JSON
    )


@router.get(
    "/ready",
    response_model=Ready,
    summary="Readiness: the gateway's own store (Redis when configured, 1 s timeout)",
    responses={503: {"model": Ready}},
)
async def ready(services: ServicesDep) -> Response:
    try:
        await services.store.ping()
    except StoreUnavailable:
        body = {"status": "unavailable", "checks": {services.store.kind: "unreachable"}}
        return Response(dumps(body), status_code=503, media_type=JSON, headers={"Retry-After": "1"})
    return Response(dumps({"status": "ready"}), media_type=JSON)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}},
)
async def metrics(services: ServicesDep) -> Response:
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)
