# Where the gateway keeps orders and idempotency records: the Store API, its in-memory
# implementation, and the shared record types (Redis lives in redis_store.py, imported only
# when REDIS_URL is set: redis.asyncio costs ~6 MB of RSS).
#
# Both stores give the same guarantees, each operation atomic (one Lua script, or one
# event-loop step with no await in the middle):
# - an idempotency key is owned by at most one execution at a time (a lease); complete and
#   release succeed only for that owner's token, so an execution that overran its lease
#   can never overwrite the record of the one that took over (fencing);
# - one order per inventory hold: create_order for a reservation id that already has an
#   order answers that order;
# - an order moves only from pending to a final status (compare-and-set).
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import time
import zlib
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal, TypeVar

from gateway.orders.domain import DependencyDown, Order, OrderStatus

IDEMPOTENCY_TTL_S = 24 * 3600  # as payment APIs keep keys
ORDER_RETENTION_S = 30 * 24 * 3600  # orders (and their hold index) are kept 30 days
MEMORY_MAX_ORDERS = 200_000
MEMORY_MAX_KEYS = 200_000
_EPOCH_2025 = 1_735_689_600  # 2025-01-01T00:00:00Z: memory order ids count seconds from it


log = logging.getLogger("gateway.store")
T = TypeVar("T")


class StoreUnavailable(Exception):
    """The store could not be reached or answered garbage."""


async def within(call: Awaitable[T], deadline: float) -> T:
    """A store call bounded by a request's deadline; its failures in domain terms."""
    try:
        async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
            return await call
    except TimeoutError:
        raise DependencyDown("order store", "deadline") from None
    except StoreUnavailable as exc:
        log.error("store_unavailable", extra={"error": str(exc)})
        raise DependencyDown("order store") from None


@dataclass(slots=True)
class IdemRecord:
    fingerprint: str
    state: Literal["pending", "done"]
    owner: str = ""  # token of the execution that holds the pending lease
    status: int = 0
    body: bytes = b""


@dataclass(slots=True)
class Claim:
    """owned: this execution now owns the key (record.owner is its token); else record is
    the current owner's (pending) or the key's final answer (done)."""

    owned: bool
    record: IdemRecord


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_hex(12)


class Store(ABC):
    kind: str

    @abstractmethod
    async def idem_claim(self, key: str, fingerprint: str, lease_s: float) -> Claim:
        """Owns key for lease_s unless another execution's lease is running or the key is
        done. A pending claim whose lease ran out counts as absent: the next claim takes the
        key over and the old owner is fenced out."""

    @abstractmethod
    async def idem_get(self, key: str) -> IdemRecord | None: ...

    @abstractmethod
    async def idem_complete(self, key: str, owner: str, status: int, body: bytes) -> bool:
        """Stores the key's final answer for IDEMPOTENCY_TTL_S; False if owner lost the key."""

    @abstractmethod
    async def idem_release(self, key: str, owner: str) -> bool:
        """Gives the key up with no answer (a retry runs again); False if owner lost it."""

    async def idem_wait(self, key: str, timeout_s: float) -> IdemRecord | None:
        """Waits until the key is done (or gone); returns the last record seen."""
        end = time.monotonic() + timeout_s
        delay = 0.005
        record = await self.idem_get(key)
        while record is not None and record.state == "pending":
            left = end - time.monotonic()
            if left <= 0:
                break
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 0.1)
            record = await self.idem_get(key)
        return record

    @abstractmethod
    async def create_order(
        self, product_id: int, quantity: int, unit: Decimal, total: Decimal, reservation_id: str
    ) -> Order:
        """A new pending order for the hold, or the order the hold already has."""

    @abstractmethod
    async def set_status(self, order_id: int, to: OrderStatus) -> tuple[Order | None, bool]:
        """Moves a pending order to to. Answers the order as it is now (a final order keeps
        its status; None if there is no such order) and whether this call moved it, so each
        order is counted once however many executions race to finish it."""

    @abstractmethod
    async def get_order(self, order_id: int) -> Order | None: ...

    @abstractmethod
    async def order_for_hold(self, reservation_id: str) -> Order | None: ...

    @abstractmethod
    async def pending_orders(self, older_than_s: float, limit: int) -> list[Order]:
        """Pending orders created at least older_than_s ago, oldest first."""

    @abstractmethod
    async def ping(self) -> None: ...

    async def close(self) -> None:
        return None


def _now_ms() -> int:
    return int(time.monotonic() * 1000)


class MemoryStore(Store):
    """One process's store (memory mode is a single gateway). Every method completes
    without awaiting, so each is atomic on the event loop."""

    kind = "memory"

    def __init__(self, instance_id: str) -> None:
        self._orders: OrderedDict[int, Order] = OrderedDict()
        self._by_hold: dict[str, int] = {}
        self._pending: dict[int, int] = {}  # order id -> created_ms, insertion = age order
        self._idem: OrderedDict[str, tuple[float, IdemRecord]] = OrderedDict()
        self._events: dict[str, asyncio.Event] = {}
        self._instance = zlib.crc32(instance_id.encode()) & 0xFF
        self._last_s = 0
        self._seq = 0

    def _next_order_id(self) -> int:
        # 33 bits of seconds since 2025 | 8 bits of instance | 12 bits of sequence: < 2^53.
        # A burst past 4096/s borrows the next second rather than repeating an id.
        now = int(time.time()) - _EPOCH_2025
        if now > self._last_s:
            self._last_s, self._seq = now, 0
        elif self._seq >= 4095:
            self._last_s, self._seq = self._last_s + 1, 0
        else:
            self._seq += 1
        return (self._last_s << 20) | (self._instance << 12) | self._seq

    async def create_order(
        self, product_id: int, quantity: int, unit: Decimal, total: Decimal, reservation_id: str
    ) -> Order:
        existing = self._by_hold.get(reservation_id)
        if existing is not None and existing in self._orders:
            return self._orders[existing]
        order = Order(
            order_id=self._next_order_id(),
            product_id=product_id,
            quantity=quantity,
            unit_price=unit,
            total_price=total,
            reservation_id=reservation_id,
            status="pending",
            created_ms=_now_ms(),
        )
        self._orders[order.order_id] = order
        self._by_hold[reservation_id] = order.order_id
        self._pending[order.order_id] = order.created_ms
        while len(self._orders) > MEMORY_MAX_ORDERS:
            _, old = self._orders.popitem(last=False)
            self._by_hold.pop(old.reservation_id, None)
            self._pending.pop(old.order_id, None)
        return order

    async def set_status(self, order_id: int, to: OrderStatus) -> tuple[Order | None, bool]:
        order = self._orders.get(order_id)
        if order is None or order.status != "pending":
            return order, False
        order = order.moved(to)
        self._orders[order_id] = order
        self._pending.pop(order_id, None)
        return order, True

    async def get_order(self, order_id: int) -> Order | None:
        return self._orders.get(order_id)

    async def order_for_hold(self, reservation_id: str) -> Order | None:
        order_id = self._by_hold.get(reservation_id)
        return self._orders.get(order_id) if order_id is not None else None

    async def pending_orders(self, older_than_s: float, limit: int) -> list[Order]:
        cutoff = _now_ms() - int(older_than_s * 1000)
        out: list[Order] = []
        for order_id, created in self._pending.items():
            if created > cutoff or len(out) >= limit:
                break
            out.append(self._orders[order_id])
        return out

    def _live(self, key: str) -> IdemRecord | None:
        entry = self._idem.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._idem[key]
            self._wake(key)
            return None
        return entry[1]

    def _put(self, key: str, record: IdemRecord, ttl_s: float) -> None:
        self._idem[key] = (time.monotonic() + ttl_s, record)
        self._idem.move_to_end(key)
        while len(self._idem) > MEMORY_MAX_KEYS:
            old, _ = self._idem.popitem(last=False)
            self._wake(old)

    async def idem_claim(self, key: str, fingerprint: str, lease_s: float) -> Claim:
        current = self._live(key)  # a pending record whose lease ran out is gone
        if current is not None:
            return Claim(False, current)
        record = IdemRecord(fingerprint, "pending", owner=new_token())
        self._put(key, record, lease_s)
        self._events.setdefault(key, asyncio.Event())
        return Claim(True, record)

    async def idem_get(self, key: str) -> IdemRecord | None:
        return self._live(key)

    def _wake(self, key: str) -> None:
        event = self._events.pop(key, None)
        if event is not None:
            event.set()

    def _owned(self, key: str, owner: str) -> IdemRecord | None:
        entry = self._idem.get(key)
        if entry is None or entry[1].state != "pending" or entry[1].owner != owner:
            return None
        return entry[1]

    async def idem_complete(self, key: str, owner: str, status: int, body: bytes) -> bool:
        record = self._owned(key, owner)
        if record is None:
            return False
        self._put(key, replace(record, state="done", status=status, body=body), IDEMPOTENCY_TTL_S)
        self._wake(key)
        return True

    async def idem_release(self, key: str, owner: str) -> bool:
        if self._owned(key, owner) is None:
            return False
        del self._idem[key]
        self._wake(key)
        return True

    async def idem_wait(self, key: str, timeout_s: float) -> IdemRecord | None:
        event = self._events.get(key)
        entry = self._idem.get(key)
        if event is not None and entry is not None and entry[1].state == "pending":
            # Never past the pending lease: a claim that outlives it is treated as gone.
            limit = min(timeout_s, max(0.0, entry[0] - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), limit)
        return self._live(key)

    async def ping(self) -> None:
        return None
