# Calls to the Go inventory service: reserve, commit, release and look up holds, and its live
# stats, each routed to the product's shard when INVENTORY_URLS lists several. Business answers
# (a hold, its state, a refusal) are returned as values; the only error raised is UpstreamError.
# Upstream error bodies are read for their code only, never shown to clients.
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Literal, cast

from gateway.clients.base import Upstream, UpstreamError, UpstreamResponse
from gateway.orders.domain import HoldState
from gateway.ring import ShardRing

log = logging.getLogger("gateway.inventory")
_STATES = frozenset({"held", "committed", "released", "expired"})
# A 409 of commit or release names the state the hold was found in (errors.md).
_CONFLICT_STATES: dict[str, HoldState] = {
    "reservation_expired": "expired",
    "reservation_released": "released",
    "reservation_committed": "committed",
}
Refusal = Literal["insufficient_stock", "product_not_found", "idempotency_conflict"]


@dataclass(frozen=True, slots=True)
class Hold:
    reservation_id: str
    product_id: int
    quantity: int
    state: HoldState
    available_before: int
    recent_demand_before: int


@dataclass(frozen=True, slots=True)
class Refused:
    """Inventory said no: the order cannot be placed as asked."""

    code: Refusal


def _state(upstream: str, value: Any) -> HoldState:
    if value not in _STATES:
        raise UpstreamError(upstream, "unavailable", f"unknown hold state {value!r}")
    return cast(HoldState, value)


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

    async def reserve(
        self, product_id: int, quantity: int, key: str, deadline: float | None
    ) -> Hold | Refused:
        """Holds units under key. The same key answers the same hold while it can sell, so
        this POST is safe to retry and replaying it resolves a reserve whose answer was lost."""
        up = self.upstream_for(product_id)
        body = {"product_id": product_id, "quantity": quantity, "idempotency_key": key}
        resp = await up.call(
            "POST", "/api/reservations", json=body, idempotent=True, deadline=deadline
        )
        if resp.status in (200, 201):
            try:
                data = resp.json()
                return Hold(
                    reservation_id=str(data["reservation_id"]),
                    product_id=product_id,
                    quantity=quantity,
                    state=_state(up.name, data["state"]),
                    available_before=int(data["available_before"]),
                    recent_demand_before=int(data["recent_demand_before"]),
                )
            except (ValueError, KeyError, TypeError):
                log.error("inventory_bad_body", extra={"status": resp.status})
                raise UpstreamError(up.name, "unavailable", "unparsable answer") from None
        code = resp.error_code()
        if resp.status == 409 and code in ("insufficient_stock", "idempotency_conflict"):
            return Refused(cast(Refusal, code))
        if resp.status == 404:
            return Refused("product_not_found")
        raise self._unexpected(up, resp, "reserve")

    async def commit(self, hold: Hold, deadline: float | None) -> HoldState | None:
        """Commits the hold and answers the state it is in now: committed (now or by an
        earlier call whose answer was lost), or expired / released if it can no longer sell;
        None when inventory has no such hold."""
        return await self._settle(hold.reservation_id, hold.product_id, "POST", "/commit", deadline)

    async def release(
        self, reservation_id: str, product_id: int, deadline: float | None
    ) -> HoldState | None:
        """Releases the hold and answers its state: released or expired (units back either
        way), or committed if it was sold, which the caller must then honour; None when
        inventory has no such hold."""
        return await self._settle(reservation_id, product_id, "DELETE", "", deadline)

    async def lookup(
        self, reservation_id: str, product_id: int, deadline: float | None
    ) -> HoldState | None:
        """The hold's state (None when inventory has no such hold)."""
        up = self.upstream_for(product_id)
        resp = await up.call(
            "GET", f"/api/reservations/{reservation_id}", idempotent=True, deadline=deadline
        )
        if resp.status == 200:
            return self._answer_state(up, resp)
        if resp.status == 404:
            return None
        raise self._unexpected(up, resp, "lookup")

    async def _settle(
        self, reservation_id: str, product_id: int, method: str, suffix: str, deadline: float | None
    ) -> HoldState | None:
        up = self.upstream_for(product_id)
        # Both are idempotent at inventory (a repeat answers the same state), so retrying
        # is safe: a retry can only learn what the first try did.
        resp = await up.call(
            method,
            f"/api/reservations/{reservation_id}{suffix}",
            idempotent=True,
            deadline=deadline,
        )
        if resp.status == 200:
            return self._answer_state(up, resp)
        if resp.status == 404:
            return None
        state = _CONFLICT_STATES.get(resp.error_code() or "")
        if resp.status == 409 and state is not None:
            return state
        raise self._unexpected(up, resp, method)

    @staticmethod
    def _answer_state(up: Upstream, resp: UpstreamResponse) -> HoldState:
        try:
            data = resp.json()
            return _state(up.name, data["state"])
        except (ValueError, KeyError, TypeError):
            raise UpstreamError(up.name, "unavailable", "unparsable answer") from None

    @staticmethod
    def _unexpected(up: Upstream, resp: UpstreamResponse, what: str) -> UpstreamError:
        code = resp.error_code()
        log.error("inventory_unexpected", extra={"call": what, "status": resp.status, "code": code})
        if code == "deadline_exceeded":
            return UpstreamError(up.name, "deadline", "inventory ran out of time")
        return UpstreamError(up.name, "unavailable", f"{what} status {resp.status}")

    async def stats(self, deadline: float | None) -> dict[str, Any]:
        """One shard's stats as they are; several shards summed into the same shape."""
        if len(self.shards) == 1:
            return await self._shard_stats(self.upstream, deadline)
        parts = await asyncio.gather(
            *(self._shard_stats(u, deadline) for u in self.shards.values())
        )
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
    async def _shard_stats(upstream: Upstream, deadline: float | None) -> dict[str, Any]:
        resp = await upstream.call("GET", "/api/stats", idempotent=True, deadline=deadline)
        data = resp.json() if resp.status == 200 else None
        if not isinstance(data, dict):
            raise UpstreamError(upstream.name, "unavailable", f"stats status {resp.status}")
        return data
