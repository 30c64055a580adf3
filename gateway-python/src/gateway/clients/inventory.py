# Calls to the Go inventory service: reserve, commit, release and look up holds, and its live
# stats, each routed to the product's shard: over the ring record and the registry when there
# is a record (gateway.shards), else over INVENTORY_URLS. A shard that answers 421 names the
# owner; the call is sent there once more after the view is refreshed (ring.md, "Routers").
# Business answers (a hold, its state, a refusal) are returned as values; the only error
# raised is UpstreamError. Upstream error bodies are read for their code only, never shown.
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

from gateway.clients.base import Upstream, UpstreamError, UpstreamResponse
from gateway.orders.domain import HoldState
from gateway.ring import ShardRing
from gateway.shards import ShardDirectory, View

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
    def __init__(
        self,
        shards: dict[str, Upstream],
        directory: ShardDirectory | None = None,
        make_upstream: Callable[[str, str], Upstream] | None = None,
    ) -> None:
        """shards: base URL (as listed in INVENTORY_URLS) -> its upstream, used while there
        is no ring record. directory and make_upstream (name, url -> a new upstream): the
        registry's view, whose members get an upstream each, made when first needed."""
        self.shards = shards
        self.ring = ShardRing(list(shards))
        self.upstream = next(iter(shards.values()))  # the only one, when not sharded
        self.directory = directory
        self._make = make_upstream
        self._members: dict[str, tuple[tuple[str, str | None], Upstream]] = {}
        self._retired: list[Upstream] = []
        self._members_lock = asyncio.Lock()

    def upstream_for(self, product_id: int) -> Upstream:
        """The static route (INVENTORY_URLS)."""
        if len(self.shards) == 1:
            return self.upstream
        name = self.ring.shard_for_product(product_id)
        return self.shards[name] if name is not None else self.upstream

    def _view(self) -> View | None:
        return self.directory.view if self.directory is not None else None

    async def _member(self, view: View, shard: str | None) -> Upstream:
        url = view.url_of(shard) if shard is not None else None
        if shard is None or url is None or self._make is None:
            raise UpstreamError(f"inventory-{shard}", "unavailable", "shard has no live instance")
        # Keyed by the instance too: a restarted shard gets a closed breaker, not the one
        # its dead predecessor opened.
        key = (url, view.instances.get(shard))
        held = self._members.get(shard)
        if held is not None and held[0] == key:
            return held[1]
        async with self._members_lock:
            held = self._members.get(shard)
            if held is not None and held[0] == key:
                return held[1]
            fresh = self._make(f"inventory-{shard}", url)
            await fresh.start()
            if held is not None:
                # Calls in flight on the old one finish; it is closed at shutdown.
                self._retired.append(held[1])
            self._members[shard] = (key, fresh)
            return fresh

    async def _route(self, product_id: int) -> Upstream:
        view = self._view()
        if view is None:
            return self.upstream_for(product_id)
        return await self._member(view, view.owner(product_id))

    async def _owner(self, name: str | None) -> Upstream | None:
        """The upstream of the shard a 421 named, after refreshing the view."""
        if name is None:
            return None
        if self.directory is not None:
            view = await self.directory.refresh()
            if view is not None:
                return await self._member(view, name)
        return self.shards.get(name)  # static names are the INVENTORY_URLS entries

    async def _call(
        self, product_id: int, method: str, path: str, deadline: float | None, json: Any = None
    ) -> tuple[Upstream, UpstreamResponse]:
        """One call to the product's shard; a 421 is followed once, to the owner it names."""
        up = await self._route(product_id)
        resp = await up.call(method, path, json=json, idempotent=True, deadline=deadline)
        if resp.status != 421:
            return up, resp
        log.info(
            "shard_misdirected",
            extra={"upstream": up.name, "owner": resp.shard_owner, "product_id": product_id},
        )
        owner = await self._owner(resp.shard_owner)
        if owner is None:
            raise UpstreamError(up.name, "unavailable", "misdirected to an unknown owner")
        resp = await owner.call(method, path, json=json, idempotent=True, deadline=deadline)
        if resp.status == 421:
            raise UpstreamError(owner.name, "unavailable", "misdirected twice")
        return owner, resp

    async def close(self) -> None:
        """Closes the registry members' upstreams (the static ones belong to the caller)."""
        for up in [*(up for _, up in self._members.values()), *self._retired]:
            await up.close()
        self._members.clear()
        self._retired.clear()

    async def reserve(
        self, product_id: int, quantity: int, key: str, deadline: float | None
    ) -> Hold | Refused:
        """Holds units under key. The same key answers the same hold while it can sell, so
        this POST is safe to retry and replaying it resolves a reserve whose answer was lost."""
        body = {"product_id": product_id, "quantity": quantity, "idempotency_key": key}
        up, resp = await self._call(product_id, "POST", "/api/reservations", deadline, body)
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
        up, resp = await self._call(
            product_id, "GET", f"/api/reservations/{reservation_id}", deadline
        )
        if resp.status == 200:
            return self._answer_state(up, resp)
        if resp.status == 404:
            return None
        raise self._unexpected(up, resp, "lookup")

    async def _settle(
        self, reservation_id: str, product_id: int, method: str, suffix: str, deadline: float | None
    ) -> HoldState | None:
        # Both are idempotent at inventory (a repeat answers the same state), so retrying
        # is safe: a retry can only learn what the first try did.
        up, resp = await self._call(
            product_id, method, f"/api/reservations/{reservation_id}{suffix}", deadline
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
        """One shard's stats as they are; several shards summed into the same shape, with
        the shards that did not answer named (every one down: UpstreamError)."""
        view = self._view()
        named: dict[str, Upstream | UpstreamError] = {}
        if view is None:
            if len(self.shards) == 1:
                return await self._shard_stats(self.upstream, deadline)
            named = dict(self.shards)
        else:
            for shard in view.ring.shards:
                try:
                    named[shard] = await self._member(view, shard)
                except UpstreamError as exc:
                    named[shard] = exc

        async def one(target: Upstream | UpstreamError) -> dict[str, Any]:
            if isinstance(target, UpstreamError):
                raise target
            return await self._shard_stats(target, deadline)

        answers = await asyncio.gather(*(one(t) for t in named.values()), return_exceptions=True)
        parts = [a for a in answers if isinstance(a, dict)]
        down = [n for n, a in zip(named, answers, strict=True) if not isinstance(a, dict)]
        if not parts:
            raise UpstreamError("inventory", "unavailable", "no shard answered")
        requests = sum(int(p.get("requests_processed", 0)) for p in parts)
        weighted = sum(
            float(p.get("avg_response_time_us", 0)) * int(p.get("requests_processed", 0))
            for p in parts
        )
        return {
            "service": parts[0].get("service", "inventory-service"),
            "language": parts[0].get("language", "Go"),
            "shards": len(named),
            "shards_down": down,
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
