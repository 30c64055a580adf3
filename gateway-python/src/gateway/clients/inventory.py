# Calls to the Go inventory service for the order saga: reserve, commit, release, and its
# live stats. Upstream error bodies are read for their code only, never shown to clients.
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from gateway.clients.base import Upstream, UpstreamUnavailable
from gateway.errors import ApiError

log = logging.getLogger("gateway.inventory")


@dataclass(frozen=True, slots=True)
class Reservation:
    reservation_id: str
    available_before: int
    recent_demand_before: int


class InventoryClient:
    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    async def reserve(self, product_id: int, quantity: int, idempotency_key: str) -> Reservation:
        body = {"product_id": product_id, "quantity": quantity, "idempotency_key": idempotency_key}
        # The idempotency key makes this POST safe to retry: a replay answers the same hold.
        resp = await self.upstream.call("POST", "/api/reservations", json=body, idempotent=True)
        if resp.status in (200, 201):
            try:
                data = resp.json()
                return Reservation(
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

    async def commit(self, reservation_id: str) -> None:
        resp = await self.upstream.call(
            "POST", f"/api/reservations/{reservation_id}/commit", idempotent=False
        )
        if resp.status in (200, 204):
            return
        code = resp.error_code()
        if resp.status == 409 and code == "reservation_expired":
            raise ApiError(
                "reservation_expired", "the stock hold expired before the order completed"
            )
        if resp.status == 409 and code == "reservation_not_pending":
            raise ApiError("reservation_not_pending", "the stock hold is no longer held")
        log.error("commit_failed", extra={"status": resp.status, "code": code})
        raise UpstreamUnavailable("inventory", f"commit status {resp.status}")

    async def release(self, reservation_id: str, detached: bool = False) -> bool:
        """Returns True once the hold is gone (released now, or already not pending)."""
        resp = await self.upstream.call(
            "DELETE", f"/api/reservations/{reservation_id}", idempotent=True, detached=detached
        )
        if resp.status in (200, 204, 404, 409):
            return True
        raise UpstreamUnavailable("inventory", f"release status {resp.status}")

    async def stats(self) -> dict[str, Any]:
        resp = await self.upstream.call("GET", "/api/stats", idempotent=True)
        if resp.status != 200:
            raise UpstreamUnavailable("inventory", f"status {resp.status}")
        data = resp.json()
        if not isinstance(data, dict):
            raise UpstreamUnavailable("inventory", "unparsable answer")
        return data
