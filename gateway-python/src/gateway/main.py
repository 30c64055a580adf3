# Application factory and process entry: create_app(settings) wires routes, error handlers,
# middleware and a lifespan that owns the upstream sessions and the store; run() serves it.
from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.routing import Route

from gateway import __version__
from gateway.api.deps import Services
from gateway.api.errors import install_error_handlers
from gateway.api.routes import health, orders, products, registry, stats
from gateway.clients.base import Upstream
from gateway.clients.inventory import InventoryClient
from gateway.clients.pricing import PricingClient
from gateway.config import Settings, load_settings
from gateway.logs import setup_logging
from gateway.metrics import Metrics
from gateway.middleware import GatewayMiddleware
from gateway.models import ErrorResponse, OrderRequest, Product
from gateway.orders.idempotency import IdempotentOrders
from gateway.orders.recovery import Recovery
from gateway.orders.workflow import OrderWorkflow
from gateway.registry import Registry, gateway_entry
from gateway.resilience import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from gateway.shards import ShardDirectory
from gateway.store import MemoryStore, Store
from gateway.web import pages as web

log = logging.getLogger("gateway")
DESCRIPTION = (
    "polyshop's public API. Errors share one JSON shape "
    '(`{"error": {"code", "message", "request_id", "details"?}}`); 429 and 503 carry Retry-After.'
)


def build_store(settings: Settings) -> Store:
    if settings.redis_url:
        from gateway.redis_store import RedisStore

        return RedisStore(settings.redis_url)
    return MemoryStore(settings.instance_id)


def build_limiter(settings: Settings, store: Store) -> RateLimiter | None:
    if not settings.rate_limit_rps:
        return None
    redis = getattr(store, "redis", None)
    if redis is not None:
        # Shared by every replica, so N gateways do not each allow the full rate.
        return RedisRateLimiter(redis, settings.rate_limit_rps, settings.rate_limit_burst)
    return MemoryRateLimiter(settings.rate_limit_rps, settings.rate_limit_burst)


def create_app(settings: Settings) -> FastAPI:
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pricing_up = Upstream("pricing", settings.pricing_url, settings, metrics)
        bases = settings.inventory_shards()
        # One upstream (pool, breaker, bulkhead) per shard, named apart for their gauges.
        shards = {
            base: Upstream(
                "inventory" if len(bases) == 1 else f"inventory-{i}", base, settings, metrics
            )
            for i, base in enumerate(bases)
        }
        upstreams = [pricing_up, *shards.values()]
        for upstream in upstreams:
            await upstream.start()
        store = build_store(settings)
        pricing = PricingClient(pricing_up)
        self_entry = gateway_entry(settings.advertise_url, __version__)
        registry_url = settings.registry_redis_url()
        reg = Registry(registry_url, self_entry) if registry_url else None
        # With a registry, the ring record (when a sharded inventory wrote one) decides
        # where products live; without, INVENTORY_URLS does.
        directory = ShardDirectory(reg) if reg is not None else None
        if directory is not None:
            await directory.refresh()
        inventory = InventoryClient(
            shards,
            directory,
            lambda name, url: Upstream(name, url, settings, metrics),
        )
        workflow = OrderWorkflow(
            inventory, pricing, store, metrics, settings.upstream_timeout_ms / 1000
        )
        orders_svc = IdempotentOrders(workflow, store)
        recovery = Recovery(workflow, store, settings.order_recovery_s)
        recovery_task = asyncio.create_task(recovery.run())
        limiter = build_limiter(settings, store)
        app.state.services = Services(
            settings=settings,
            metrics=metrics,
            store=store,
            upstreams=upstreams,
            pricing=pricing,
            inventory=inventory,
            orders=orders_svc,
            recovery=recovery,
            limiter=limiter,
            self_entry=self_entry,
            registry=reg,
        )
        log.info("listening", extra={"port": settings.port, "store": store.kind})
        if reg is not None:
            reg.start()
        if directory is not None:
            directory.start()
        try:
            yield
        finally:
            if directory is not None:
                await directory.stop()
            if reg is not None:
                await reg.stop()
            await orders_svc.drain()
            recovery_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recovery_task
            for upstream in upstreams:
                await upstream.close()
            await inventory.close()
            await store.close()
            log.info("shutdown")

    app = FastAPI(
        title="polyshop gateway",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Our own middleware records metrics, logs and trace headers; FastAPI's native
        # OpenTelemetry has no provider here, yet asks for one on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    # The hot routes are plain Starlette routes, so FastAPI's per-route machinery is
    # skipped, and the first ones matched (FastAPI registered /openapi.json and /docs first).
    app.router.routes[:0] = [
        Route(products.PRODUCT_ROUTE, products.product_get, methods=["GET"]),
        Route(orders.ORDER_ROUTE, orders.order_post, methods=["POST"]),
    ]
    for module in (products, orders, stats, registry, health):
        app.include_router(module.router)
    app.include_router(web.router)  # the storefront: HTML pages, not in the OpenAPI document
    app.add_middleware(
        GatewayMiddleware,
        settings=settings,
        metrics=metrics,
        plain_routes={
            products.product_get: products.PRODUCT_ROUTE,
            orders.order_post: orders.ORDER_ROUTE,
        },
        error_page=web.middleware_error_page,
    )

    def custom_openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        _document_plain_routes(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = custom_openapi  # type: ignore[method-assign]
    return app


def _document_plain_routes(schema: dict[str, Any]) -> None:
    """Adds GET /api/product/{id} and POST /api/order, plain routes FastAPI does not document."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    # OrderRequest is read by hand in orders.py, so FastAPI does not register it either.
    for model in (Product, ErrorResponse, OrderRequest):
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(model_schema.pop("$defs", {}))
        components.setdefault(model.__name__, model_schema)
    error = {
        "description": "error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}},
    }
    operation = {
        "tags": ["products"],
        "summary": "One product with live stock and price",
        "description": "Passes pricing's GET /api/prices/{id} answer through, adding "
        "processing_time_ms. Product 123 of the seed catalog: final_price 164.35.",
        "operationId": "product_get_api_product__id__get",
        "parameters": [
            {
                "name": "id",
                "in": "path",
                "required": True,
                "schema": {"type": "integer", "minimum": 1, "maximum": 1_000_000_000},
            }
        ],
        "responses": {
            "200": {
                "description": "Successful Response",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Product"}}
                },
            },
            "404": error,
            "422": error,
            "503": error,
        },
    }
    paths = schema.setdefault("paths", {})
    paths["/api/product/{id}"] = {"get": operation}
    paths[orders.ORDER_ROUTE] = {"post": orders.ORDER_POST_OPERATION}
    schema["paths"] = dict(sorted(paths.items()))
    schema["components"]["schemas"] = dict(sorted(components.items()))


def run() -> None:
    settings = load_settings()
    setup_logging(settings.log_level)
    log.info("config", extra={"config": settings.masked()})
    app = create_app(settings)
    # The modules and the app live as long as the process: frozen, the collector's older
    # generations no longer walk them under load (the storefront's Jinja2 made that walk
    # longer; measured A/B: read-path CPU per request back below the pre-storefront gateway's).
    gc.freeze()
    uvicorn.run(
        app,
        host="0.0.0.0",  # noqa: S104 - a service in a container must listen on all interfaces
        port=settings.port,
        loop="uvloop",
        http="httptools",
        workers=1,
        log_config=None,
        access_log=False,
        server_header=False,
        # The gateway reads X-Forwarded-For itself, from TRUSTED_PROXIES only
        # (netaddr.py); uvicorn's rewrite trusts 127.0.0.1 and would let a local
        # client pick its own rate-limit bucket.
        proxy_headers=False,
        timeout_graceful_shutdown=10,
        lifespan="on",
    )
