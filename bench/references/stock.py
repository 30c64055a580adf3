"""Inventory state in memory: a dict of products and a dict of holds behind one lock.

The semantics of inventory.openapi.yaml: `available` excludes held units; a hold is `held`
until it is committed (sold), released or expired, and those three are final; stock never
goes negative. An idempotency key answers its hold while it is held or committed; once the
hold is released or expired, the same key and body make a new hold.
"""

from __future__ import annotations

import heapq
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from references.catalog import Product

DEMAND_WINDOW_S = 3600.0
RETENTION_S = 24 * 3600.0
DEFAULT_TTL_S = 300


class StockError(Exception):
    code = "internal_error"


class ProductNotFound(StockError):
    code = "product_not_found"

    def __init__(self, product_id: int) -> None:
        super().__init__(f"product {product_id} does not exist")


class ReservationNotFound(StockError):
    code = "reservation_not_found"

    def __init__(self, reservation_id: str) -> None:
        super().__init__(f"reservation {reservation_id} does not exist")


class InsufficientStock(StockError):
    code = "insufficient_stock"

    def __init__(self, product_id: int, available: int) -> None:
        super().__init__(f"only {available} units of product {product_id} are available")


class IdempotencyConflict(StockError):
    code = "idempotency_conflict"

    def __init__(self) -> None:
        super().__init__("idempotency key reused with a different request")


class WrongState(StockError):
    """A commit or release found the hold in a state that refuses it."""

    def __init__(self, state: str) -> None:
        self.code = f"reservation_{state}"
        super().__init__(f"the reservation is {state}")


@dataclass(slots=True)
class Item:
    product_id: int
    available: int
    warehouse: str
    last_updated: datetime
    reserved: int = 0
    sold: int = 0
    recent_demand: int = 0
    demand: deque[tuple[float, int]] = field(default_factory=deque)


@dataclass(slots=True)
class Hold:
    reservation_id: str
    product_id: int
    quantity: int
    state: str
    expires_at: datetime
    available_before: int
    recent_demand_before: int
    idempotency_key: str | None = None
    fingerprint: tuple[int, int] = (0, 0)
    settled_at: float = 0.0


class Stock:
    def __init__(self, products: Iterable[Product], clock: Callable[[], float] = time.time):
        self._clock = clock
        self._lock = threading.Lock()
        now = self._now()
        self._items = {
            p.id: Item(product_id=p.id, available=p.stock, warehouse=p.warehouse, last_updated=now)
            for p in products
        }
        self._holds: dict[str, Hold] = {}
        self._keys: dict[str, Hold] = {}
        self._expiry: list[tuple[float, str]] = []  # heap of (expires_at, id) of held holds
        self._settled: deque[Hold] = deque()  # in settle order, forgotten after RETENTION_S

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    # Every helper below with a leading underscore expects the lock to be held.

    def _item(self, product_id: int) -> Item:
        item = self._items.get(product_id)
        if item is None:
            raise ProductNotFound(product_id)
        cutoff = self._clock() - DEMAND_WINDOW_S
        while item.demand and item.demand[0][0] <= cutoff:
            item.recent_demand -= item.demand.popleft()[1]
        return item

    def _settle(self, hold: Hold, state: str) -> None:
        item = self._items[hold.product_id]
        item.reserved -= hold.quantity
        if state == "committed":
            item.sold += hold.quantity
        else:
            item.available += hold.quantity
        item.last_updated = self._now()
        hold.state = state
        hold.settled_at = self._clock()
        self._settled.append(hold)

    def _expire_if_due(self, hold: Hold) -> None:
        if hold.state == "held" and hold.expires_at.timestamp() <= self._clock():
            self._settle(hold, "expired")

    def _hold(self, reservation_id: str) -> Hold:
        hold = self._holds.get(reservation_id)
        if hold is None:
            raise ReservationNotFound(reservation_id)
        self._expire_if_due(hold)
        return hold

    @staticmethod
    def _snapshot(item: Item) -> Item:
        return replace(item, demand=deque())

    def get(self, product_id: int) -> Item:
        with self._lock:
            return self._snapshot(self._item(product_id))

    def get_many(self, ids: Iterable[int]) -> tuple[list[Item], list[int]]:
        found, missing = [], []
        with self._lock:
            for product_id in dict.fromkeys(ids):
                try:
                    found.append(self._snapshot(self._item(product_id)))
                except ProductNotFound:
                    missing.append(product_id)
        return found, missing

    def restock(self, product_id: int, available: int) -> Item:
        with self._lock:
            item = self._item(product_id)
            item.available = available
            item.last_updated = self._now()
            return self._snapshot(item)

    def reserve(
        self, product_id: int, quantity: int, ttl_s: int = DEFAULT_TTL_S, key: str | None = None
    ) -> tuple[Hold, bool]:
        """A new hold (False), or the key's live hold as it is now (True)."""
        with self._lock:
            if key is not None and (known := self._keys.get(key)) is not None:
                if known.fingerprint != (product_id, quantity):
                    raise IdempotencyConflict()
                self._expire_if_due(known)
                if known.state in ("held", "committed"):
                    return replace(known), True
            item = self._item(product_id)
            if item.available < quantity:
                raise InsufficientStock(product_id, item.available)
            now = self._clock()
            hold = Hold(
                reservation_id=self._new_id(),
                product_id=product_id,
                quantity=quantity,
                state="held",
                expires_at=datetime.fromtimestamp(now + ttl_s, UTC),
                available_before=item.available,
                recent_demand_before=item.recent_demand,
                idempotency_key=key,
                fingerprint=(product_id, quantity),
            )
            item.available -= quantity
            item.reserved += quantity
            item.recent_demand += quantity
            item.demand.append((now, quantity))
            item.last_updated = datetime.fromtimestamp(now, UTC)
            self._holds[hold.reservation_id] = hold
            if key is not None:
                self._keys[key] = hold
            heapq.heappush(self._expiry, (now + ttl_s, hold.reservation_id))
            return replace(hold), False

    def _new_id(self) -> str:
        while True:
            reservation_id = "RES-" + secrets.token_hex(12)
            if reservation_id not in self._holds:
                return reservation_id

    def lookup(self, reservation_id: str) -> Hold:
        with self._lock:
            return replace(self._hold(reservation_id))

    def commit(self, reservation_id: str) -> tuple[Hold, bool]:
        """The committed hold and whether it already was; WrongState if expired/released."""
        with self._lock:
            hold = self._hold(reservation_id)
            if hold.state == "held":
                self._settle(hold, "committed")
                return replace(hold), False
            if hold.state == "committed":
                return replace(hold), True
            raise WrongState(hold.state)

    def release(self, reservation_id: str) -> tuple[Hold, bool]:
        """The released (or found expired) hold and whether it already was; committed refuses."""
        with self._lock:
            hold = self._hold(reservation_id)
            if hold.state == "held":
                self._settle(hold, "released")
                return replace(hold), False
            if hold.state == "committed":
                raise WrongState("committed")
            return replace(hold), hold.state == "released"

    def sweep(self) -> int:
        """Expires held holds past their TTL and forgets holds settled long ago."""
        expired = 0
        with self._lock:
            now = self._clock()
            while self._expiry and self._expiry[0][0] <= now:
                _, reservation_id = heapq.heappop(self._expiry)
                hold = self._holds.get(reservation_id)
                if hold is not None and hold.state == "held":
                    self._settle(hold, "expired")
                    expired += 1
            while self._settled and self._settled[0].settled_at < now - RETENTION_S:
                hold = self._settled.popleft()
                self._holds.pop(hold.reservation_id, None)
                if hold.idempotency_key and self._keys.get(hold.idempotency_key) is hold:
                    del self._keys[hold.idempotency_key]
        return expired
