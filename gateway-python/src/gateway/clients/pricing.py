# Calls to the Rust pricing service (services/contracts/README.md): the pass-through product
# reads, the saga's price calculation and its live stats. The only error raised is
# UpstreamError; an unknown product is an answer (None), not an error.
from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from gateway.clients.base import FailureKind, Upstream, UpstreamError, UpstreamResponse
from gateway.money import to_decimal

log = logging.getLogger("gateway.pricing")


class PricingClient:
    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    async def product_raw(self, product_id: int, deadline: float) -> UpstreamResponse:
        """GET /api/prices/{id}: the gateway's product object minus processing_time_ms."""
        return await self.upstream.call(
            "GET", f"/api/prices/{product_id}", idempotent=True, deadline=deadline
        )

    async def products_raw(self, ids: list[int], deadline: float) -> UpstreamResponse:
        joined = ",".join(map(str, ids))
        return await self.upstream.call(
            "GET", f"/api/prices?ids={joined}", idempotent=True, deadline=deadline
        )

    async def unit_price(
        self, product_id: int, quantity: int, available: int, recent_demand: int, deadline: float
    ) -> Decimal | None:
        """POST /api/calculate_price on the stock and demand before the order's hold; None
        when pricing does not know the product."""
        body = {
            "product_id": product_id,
            "quantity_available": available,
            "quantity": quantity,
            "recent_demand": recent_demand,
        }
        # A price calculation has no side effect, so it may be retried.
        resp = await self.upstream.call(
            "POST", "/api/calculate_price", json=body, idempotent=True, deadline=deadline
        )
        if resp.status == 200:
            try:
                return to_decimal(resp.json()["final_price"])
            except (ValueError, KeyError, TypeError, ArithmeticError):
                log.error("pricing_bad_body", extra={"status": resp.status})
                raise UpstreamError("pricing", "unavailable", "unparsable answer") from None
        if resp.status == 404:
            return None
        code = resp.error_code()
        log.error("pricing_unexpected", extra={"status": resp.status, "code": code})
        kind: FailureKind = "deadline" if code == "deadline_exceeded" else "unavailable"
        raise UpstreamError("pricing", kind, f"status {resp.status}")

    async def stats(self, deadline: float | None) -> dict[str, Any]:
        resp = await self.upstream.call("GET", "/api/stats", idempotent=True, deadline=deadline)
        data = resp.json() if resp.status == 200 else None
        if not isinstance(data, dict):
            raise UpstreamError("pricing", "unavailable", f"stats status {resp.status}")
        return data
