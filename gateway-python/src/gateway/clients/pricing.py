# Calls to the Rust pricing service (services/contracts/README.md): the pass-through product
# reads, the saga's price calculation and its live stats.
from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from gateway.clients.base import Upstream, UpstreamResponse, UpstreamUnavailable
from gateway.errors import ApiError
from gateway.money import to_decimal

log = logging.getLogger("gateway.pricing")


class PricingClient:
    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    async def product_raw(self, product_id: int) -> UpstreamResponse:
        """GET /api/prices/{id}: the gateway's product object minus processing_time_ms."""
        return await self.upstream.call("GET", f"/api/prices/{product_id}", idempotent=True)

    async def products_raw(self, ids: list[int]) -> UpstreamResponse:
        joined = ",".join(map(str, ids))
        return await self.upstream.call("GET", f"/api/prices?ids={joined}", idempotent=True)

    async def unit_price(
        self, product_id: int, quantity: int, available: int, recent_demand: int
    ) -> Decimal:
        """POST /api/calculate_price priced on the stock and demand before the order's hold."""
        body = {
            "product_id": product_id,
            "quantity_available": available,
            "quantity": quantity,
            "recent_demand": recent_demand,
        }
        # A price calculation has no side effect, so it may be retried.
        resp = await self.upstream.call("POST", "/api/calculate_price", json=body, idempotent=True)
        if resp.status == 200:
            try:
                return to_decimal(resp.json()["final_price"])
            except (ValueError, KeyError, TypeError, ArithmeticError):
                log.error("pricing_bad_body", extra={"status": resp.status})
                raise UpstreamUnavailable("pricing", "unparsable answer") from None
        if resp.status == 404:
            raise ApiError("product_not_found", f"product {product_id} does not exist")
        log.error("pricing_unexpected", extra={"status": resp.status, "code": resp.error_code()})
        raise UpstreamUnavailable("pricing", f"status {resp.status}")

    async def stats(self) -> dict[str, Any]:
        resp = await self.upstream.call("GET", "/api/stats", idempotent=True)
        if resp.status != 200:
            raise UpstreamUnavailable("pricing", f"status {resp.status}")
        data = resp.json()
        if not isinstance(data, dict):
            raise UpstreamUnavailable("pricing", "unparsable answer")
        return data
