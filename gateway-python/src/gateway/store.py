# Where the gateway keeps orders, order ids and idempotency records: the Store API, its
# in-memory implementation, and the shared record types (Redis lives in redis_store.py,
# imported only when REDIS_URL is set: redis.asyncio costs ~6 MB of RSS).
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import zlib
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

import orjson

IDEMPOTENCY_TTL_S = 24 * 3600
MEMORY_MAX_ORDERS = 200_000
MEMORY_MAX_KEYS = 200_000
_EPOCH_2025 = 1_735_689_600  # 2025-01-01T00:00:00Z


class StoreUnavailable(Exception):
    """The store could not be reached or answered garbage."""


@dataclass(slots=True)
class IdemRecord:
    fingerprint: str
    state: Literal["pending", "done"]
    status: int = 0
    body: bytes = b""
    generation: int = 0  # executions of this key already compensated (see saga.py)

    def dump(self) -> bytes:
        return orjson.dumps(
            {
                "fp": self.fingerprint,
                "state": self.state,
                "status": self.status,
                "body": self.body.decode(),
                "gen": self.generation,
            }
        )

    @classmethod
    def load(cls, raw: bytes | str) -> IdemRecord:
        d = orjson.loads(raw)
        return cls(d["fp"], d["state"], d["status"], d["body"].encode(), d["gen"])


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Store(ABC):
    kind: str

    @abstractmethod
    async def next_order_id(self) -> int: ...

    @abstractmethod
    async def put_order(self, order: dict[str, Any]) -> None: ...

    @abstractmethod
    async def get_order(self, order_id: int) -> dict[str, Any] | None: ...

    @abstractmethod
    async def idem_claim(
        self, key: str, fingerprint: str, lease_s: float
    ) -> tuple[bool, IdemRecord]:
        """(True, our pending record) if this caller now owns the key, else (False, theirs)."""

    @abstractmethod
    async def idem_get(self, key: str) -> IdemRecord | None: ...

    @abstractmethod
    async def idem_complete(self, key: str, record: IdemRecord) -> None: ...

    @abstractmethod
    async def idem_abandon(self, key: str, generation: int) -> None:
        """Forget a pending key after a compensated failure so the client may retry it."""

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
    async def ping(self) -> None: ...

    async def close(self) -> None:
        return None


class MemoryStore(Store):
    kind = "memory"

    def __init__(self, instance_id: str) -> None:
        self._orders: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._idem: OrderedDict[str, tuple[float, IdemRecord]] = OrderedDict()
        self._generations: dict[str, int] = {}
        self._events: dict[str, asyncio.Event] = {}
        self._instance = zlib.crc32(instance_id.encode()) & 0xFF
        self._last_s = 0
        self._seq = 0

    async def next_order_id(self) -> int:
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

    async def put_order(self, order: dict[str, Any]) -> None:
        self._orders[order["order_id"]] = dict(order)
        self._orders.move_to_end(order["order_id"])
        while len(self._orders) > MEMORY_MAX_ORDERS:
            self._orders.popitem(last=False)

    async def get_order(self, order_id: int) -> dict[str, Any] | None:
        order = self._orders.get(order_id)
        return dict(order) if order is not None else None

    def _live(self, key: str) -> IdemRecord | None:
        entry = self._idem.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._idem[key]
            return None
        return entry[1]

    def _put(self, key: str, record: IdemRecord, ttl_s: float) -> None:
        self._idem[key] = (time.monotonic() + ttl_s, record)
        self._idem.move_to_end(key)
        while len(self._idem) > MEMORY_MAX_KEYS:
            self._idem.popitem(last=False)

    async def idem_claim(
        self, key: str, fingerprint: str, lease_s: float
    ) -> tuple[bool, IdemRecord]:
        existing = self._live(key)
        if existing is not None:
            return False, existing
        record = IdemRecord(fingerprint, "pending", generation=self._generations.get(key, 0))
        self._put(key, record, lease_s)
        self._events[key] = asyncio.Event()
        return True, record

    async def idem_get(self, key: str) -> IdemRecord | None:
        return self._live(key)

    def _wake(self, key: str) -> None:
        event = self._events.pop(key, None)
        if event is not None:
            event.set()

    async def idem_complete(self, key: str, record: IdemRecord) -> None:
        self._put(key, record, IDEMPOTENCY_TTL_S)
        self._wake(key)

    async def idem_abandon(self, key: str, generation: int) -> None:
        self._idem.pop(key, None)
        self._generations[key] = generation + 1
        self._wake(key)

    async def idem_wait(self, key: str, timeout_s: float) -> IdemRecord | None:
        event = self._events.get(key)
        entry = self._idem.get(key)
        if event is not None and entry is not None:
            # Never past the pending lease: a claim that outlives it is treated as gone.
            limit = min(timeout_s, max(0.0, entry[0] - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), limit)
        return self._live(key)

    async def ping(self) -> None:
        return None
