# The Redis implementation of the gateway's Store (REDIS_URL set): orders, an INCR order id
# shared by every replica, and idempotency records claimed with SET NX and a lease.
from __future__ import annotations

import asyncio
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from gateway.store import IDEMPOTENCY_TTL_S, IdemRecord, Store, StoreUnavailable, key_hash


class RedisStore(Store):
    kind = "redis"
    _PREFIX = "polyshop:gateway:"

    def __init__(self, url: str) -> None:
        self.redis: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_timeout=1.0, socket_connect_timeout=1.0, max_connections=256
        )

    def _k(self, *parts: str) -> str:
        return self._PREFIX + ":".join(parts)

    async def next_order_id(self) -> int:
        try:
            return int(await self.redis.incr(self._k("order_seq")))
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from None

    async def put_order(self, order: dict[str, Any]) -> None:
        try:
            await self.redis.set(self._k("order", str(order["order_id"])), orjson.dumps(order))
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from None

    async def get_order(self, order_id: int) -> dict[str, Any] | None:
        try:
            raw = await self.redis.get(self._k("order", str(order_id)))
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from None
        if raw is None:
            return None
        order: dict[str, Any] = orjson.loads(raw)
        return order

    async def idem_claim(
        self, key: str, fingerprint: str, lease_s: float
    ) -> tuple[bool, IdemRecord]:
        h = key_hash(key)
        try:
            for _ in range(3):
                gen_raw = await self.redis.get(self._k("idem-gen", h))
                record = IdemRecord(fingerprint, "pending", generation=int(gen_raw or 0))
                ok = await self.redis.set(
                    self._k("idem", h), record.dump(), nx=True, px=max(1, int(lease_s * 1000))
                )
                if ok:
                    return True, record
                raw = await self.redis.get(self._k("idem", h))
                if raw is not None:
                    return False, IdemRecord.load(raw)
                # The other holder's lease ended between SET and GET: try to claim again.
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from None
        raise StoreUnavailable("idempotency key kept changing hands")

    async def idem_get(self, key: str) -> IdemRecord | None:
        try:
            raw = await self.redis.get(self._k("idem", key_hash(key)))
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from None
        return IdemRecord.load(raw) if raw is not None else None

    async def idem_complete(self, key: str, record: IdemRecord) -> None:
        try:
            await self.redis.set(
                self._k("idem", key_hash(key)), record.dump(), ex=IDEMPOTENCY_TTL_S
            )
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from None

    async def idem_abandon(self, key: str, generation: int) -> None:
        h = key_hash(key)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._k("idem", h))
                pipe.set(self._k("idem-gen", h), generation + 1, ex=IDEMPOTENCY_TTL_S)
                await pipe.execute()
        except RedisError as exc:
            raise StoreUnavailable(str(exc)) from None

    async def ping(self) -> None:
        try:
            await asyncio.wait_for(self.redis.ping(), 1.0)
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(str(exc) or type(exc).__name__) from None

    async def close(self) -> None:
        await self.redis.aclose()
