# Calls to the Go inventory service for the order saga: reserve, commit, release, and its
# live stats, each routed to the product's shard when INVENTORY_URLS lists several.
# Upstream error bodies are read for their code only, never shown to clients.
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from gateway.clients.base import Upstream, UpstreamUnavailable
from gateway.errors import ApiError
from gateway.ring import ShardRing

log = logging.getLogger("gateway.inventory")


@dataclass(frozen=True, slots=True)
class Reservation:
    product_id: int
    reservation_id: str
    available_before: int
    recent_demand_before: int


class InventoryClient:
    def __init__(self, shards: dict[str, Upstream]) -> None:
        """shards: base URL (as listed in INVENTORY_URLS) -> its upstream."""
        self.shards = shards
        self.ring = ShardRing(list(shards))
        self.upstream = next(iter(shards.values()))  # the only one, when not sharded

    def upstream_for(self, product_id: int) -> Upstream:
        if len(self.shards) == 1:
            return self.upstream
        name = self.ring.shard_for_product(product_id)
        return self.shards[name] if name is not None else self.upstream

    async def reserve(self, product_id: int, quantity: int, idempotency_key: str) -> Reservation:
        body = {"product_id": product_id, "quantity": quantity, "idempotency_key": idempotency_key}
        # The idempotency key makes this POST safe to retry: a replay answers the same hold.
        resp = await self.upstream_for(product_id).call(
            "POST", "/api/reservations", json=body, idempotent=True
        )
        if resp.status in (200, 201):
            try:
                data = resp.json()
                return Reservation(
                    product_id=product_id,
                    reservation_id=str(data["reservation_id"]),
                    available_before=int(data["available_before"]),
                    recent_demand_before=int(data["recent_demand_before"]),
                )
            except (ValueError, KeyError, TypeError):
                log.error("inventory_bad_body", extra={"status": resp.status})
                raise UpstreamUnavailable("inventory", "unparsable answer") from None
        code = resp.error_code()
        if resp.status == 409 and code == "insufficient_stock":
            raise ApiError(
                "insufficient_stock", f"not enough units of product {product_id} available"
            )
        if resp.status == 404:
            raise ApiError("product_not_found", f"product {product_id} does not exist")
        log.error("inventory_unexpected", extra={"status": resp.status, "code": code})
        raise UpstreamUnavailable("inventory", f"status {resp.status}")

    async def commit(self, hold: Reservation, *, recheck: bool = False) -> None:
        """Commits the hold. recheck=True is a second attempt after the first one's answer
        was lost: reservation_not_pending then means that first commit landed (only this
        saga commits or releases its hold, and a hold past its TTL answers
        reservation_expired), so it counts as success."""
        reservation_id = hold.reservation_id
        resp = await self.upstream_for(hold.product_id).call(
            "POST",
            f"/api/reservations/{reservation_id}/commit",
            idempotent=False,
            detached=recheck,
        )
        if resp.status in (200, 204):
            return
        code = resp.error_code()
        if resp.status == 409 and code == "reservation_expired":
            raise ApiError(
                "reservation_expired", "the stock hold expired before the order completed"
            )
        if resp.status == 409 and code == "reservation_not_pending":
            if recheck:
                log.warning("commit_confirmed_by_recheck", extra={"reservation_id": reservation_id})
                return
            raise ApiError("reservation_not_pending", "the stock hold is no longer held")
        log.error("commit_failed", extra={"status": resp.status, "code": code})
        raise UpstreamUnavailable("inventory", f"commit status {resp.status}")

    async def release(self, hold: Reservation, detached: bool = False) -> bool:
        """Returns True once the hold is gone (released now, or already not pending)."""
        reservation_id = hold.reservation_id
        resp = await self.upstream_for(hold.product_id).call(
            "DELETE", f"/api/reservations/{reservation_id}", idempotent=True, detached=detached
        )
        if resp.status in (200, 204, 404, 409):
            return True
        raise UpstreamUnavailable("inventory", f"release status {resp.status}")

    async def stats(self) -> dict[str, Any]:
        """One shard's stats as they are; several shards summed into the same shape."""
        if len(self.shards) == 1:
            return await self._shard_stats(self.upstream)
        parts = await asyncio.gather(*(self._shard_stats(u) for u in self.shards.values()))
        requests = sum(int(p.get("requests_processed", 0)) for p in parts)
        weighted = sum(
            float(p.get("avg_response_time_us", 0)) * int(p.get("requests_processed", 0))
            for p in parts
        )
        return {
            "service": parts[0].get("service", "inventory-service"),
            "language": parts[0].get("language", "Go"),
            "shards": len(parts),
            "requests_processed": requests,
            "active_goroutines": sum(int(p.get("active_goroutines", 0)) for p in parts),
            "avg_response_time_us": round(weighted / requests, 3) if requests else 0.0,
        }

    @staticmethod
    async def _shard_stats(upstream: Upstream) -> dict[str, Any]:
        resp = await upstream.call("GET", "/api/stats", idempotent=True)
        if resp.status != 200:
            raise UpstreamUnavailable(upstream.name, f"status {resp.status}")
        data = resp.json()
        if not isinstance(data, dict):
            raise UpstreamUnavailable(upstream.name, "unparsable answer")
        return data
