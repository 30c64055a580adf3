# Dependency aliases of the routes: the Services container the lifespan built for this app.
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from gateway.clients.base import Upstream
from gateway.clients.inventory import InventoryClient
from gateway.clients.pricing import PricingClient
from gateway.config import Settings
from gateway.metrics import Metrics
from gateway.orders.idempotency import IdempotentOrders
from gateway.orders.recovery import Recovery
from gateway.registry import Entry, Registry
from gateway.resilience import RateLimiter
from gateway.store import Store


@dataclass(slots=True)
class Services:
    """Everything a request may use; built once per app in the lifespan, never global."""

    settings: Settings
    metrics: Metrics
    store: Store
    upstreams: list[Upstream]
    pricing: PricingClient
    inventory: InventoryClient
    orders: IdempotentOrders
    recovery: Recovery
    limiter: RateLimiter | None
    self_entry: Entry
    registry: Registry | None = None  # None: no registry configured
    started_at: float = field(default_factory=time.monotonic)


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _services_dep(request: Request) -> Services:
    # async on purpose: FastAPI runs a plain `def` dependency in a worker thread per request.
    return services_of(request)


ServicesDep = Annotated[Services, Depends(_services_dep)]
