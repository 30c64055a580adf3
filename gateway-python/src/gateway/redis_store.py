# The Redis implementation of the gateway's Store (REDIS_URL set): orders with an INCR id shared
# by every replica, one order per hold, and fenced idempotency records. Every operation that
# reads and writes is one Lua script, and every time decision (leases, order age) uses Redis's
# own TIME, so replicas with skewed clocks agree.
#
# Keys (all under polyshop:gateway:):
#   idem:<sha256 of key>   hash  fp state owner lease_ms status body   (TTL 24 h)
#   order:<id>             hash  the order's fields                    (TTL 30 days)
#   order-by-hold:<rid>    string order id of a hold                   (TTL 30 days)
#   order_seq              string the last order id (never expires, never reset; see below)
#   orders:pending         zset  pending order ids scored by creation (ms, Redis clock)
from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gateway.orders.domain import Order, OrderStatus
from gateway.store import (
    IDEMPOTENCY_TTL_S,
    ORDER_RETENTION_S,
    Claim,
    IdemRecord,
    Store,
    StoreUnavailable,
    key_hash,
    new_token,
)

_PRELUDE = """
local P = 'polyshop:gateway:'
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""

# ARGV: key hash, fingerprint, new token, lease ms, ttl s. A pending record whose lease ran
# out counts as absent (taken over; its owner is fenced out by the token).
_CLAIM = (
    _PRELUDE
    + """
local k = P .. 'idem:' .. ARGV[1]
local now = clock()
local r = redis.call('HMGET', k, 'fp', 'state', 'owner', 'lease_ms', 'status', 'body')
if r[1] and (r[2] == 'done' or tonumber(r[4]) > now) then
  return {0, r[1], r[2], r[3], r[5] or '0', r[6] or ''}
end
redis.call('DEL', k)
redis.call('HSET', k, 'fp', ARGV[2], 'state', 'pending', 'owner', ARGV[3],
  'lease_ms', now + tonumber(ARGV[4]))
redis.call('EXPIRE', k, tonumber(ARGV[5]))
return {1, ARGV[2], 'pending', ARGV[3], '0', ''}
"""
)

# ARGV: key hash. The record, unless it is a pending one whose lease ran out (absent).
_GET = (
    _PRELUDE
    + """
local k = P .. 'idem:' .. ARGV[1]
local r = redis.call('HMGET', k, 'fp', 'state', 'owner', 'lease_ms', 'status', 'body')
if not r[1] or (r[2] ~= 'done' and tonumber(r[4]) <= clock()) then return {} end
return {0, r[1], r[2], r[3], r[5] or '0', r[6] or ''}
"""
)

# ARGV: key hash, token, status, body, ttl s. Only the owner of a pending record completes it.
_COMPLETE = (
    _PRELUDE
    + """
local k = P .. 'idem:' .. ARGV[1]
local r = redis.call('HMGET', k, 'state', 'owner')
if r[1] ~= 'pending' or r[2] ~= ARGV[2] then return 0 end
redis.call('HSET', k, 'state', 'done', 'status', ARGV[3], 'body', ARGV[4])
redis.call('EXPIRE', k, tonumber(ARGV[5]))
return 1
"""
)

# ARGV: key hash, token.
_RELEASE = (
    _PRELUDE
    + """
local k = P .. 'idem:' .. ARGV[1]
local r = redis.call('HMGET', k, 'state', 'owner')
if r[1] ~= 'pending' or r[2] ~= ARGV[2] then return 0 end
redis.call('DEL', k)
return 1
"""
)

# ARGV: reservation id, product id, quantity, unit price, total price, retention s.
_CREATE_ORDER = (
    _PRELUDE
    + """
local hk = P .. 'order-by-hold:' .. ARGV[1]
local existing = redis.call('GET', hk)
if existing then
  local o = redis.call('HGETALL', P .. 'order:' .. existing)
  if #o > 0 then return o end
end
-- Order ids never repeat, even after Redis loses its last second of writes (AOF
-- everysec, a hard kill): an id is at least 16 x the ms since 2025 on Redis's clock, so
-- ids issued after a restart are above every id issued before it (below 16000 orders/s).
local now = clock()
local id = string.format('%d', math.max(tonumber(redis.call('GET', P .. 'order_seq') or '0') + 1,
  (now - 1735689600000) * 16))
redis.call('SET', P .. 'order_seq', id)
local ok = P .. 'order:' .. id
redis.call('HSET', ok, 'order_id', id, 'product_id', ARGV[2], 'quantity', ARGV[3],
  'unit_price', ARGV[4], 'total_price', ARGV[5], 'reservation_id', ARGV[1],
  'status', 'pending', 'created_ms', now)
redis.call('EXPIRE', ok, tonumber(ARGV[6]))
redis.call('SET', hk, id, 'EX', tonumber(ARGV[6]))
redis.call('ZADD', P .. 'orders:pending', now, id)
return redis.call('HGETALL', ok)
"""
)

# ARGV: order id, new status. Only a pending order moves; the answer is {moved, the order}.
_SET_STATUS = (
    _PRELUDE
    + """
local ok = P .. 'order:' .. ARGV[1]
local st = redis.call('HGET', ok, 'status')
if not st then return {0, {}} end
local moved = 0
if st == 'pending' then
  redis.call('HSET', ok, 'status', ARGV[2])
  redis.call('ZREM', P .. 'orders:pending', ARGV[1])
  moved = 1
end
return {moved, redis.call('HGETALL', ok)}
"""
)

# ARGV: age ms, limit. Pending orders at least that old on Redis's clock, oldest first; ids
# whose order is gone (retention) leave the set.
_PENDING = (
    _PRELUDE
    + """
local z = P .. 'orders:pending'
local ids = redis.call('ZRANGEBYSCORE', z, '-inf', clock() - tonumber(ARGV[1]),
  'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(ids) do
  local o = redis.call('HGETALL', P .. 'order:' .. id)
  if #o == 0 then redis.call('ZREM', z, id) else out[#out + 1] = o end
end
return out
"""
)


def _order(flat: list[Any]) -> Order:
    fields = {
        (k.decode() if isinstance(k, bytes) else str(k)): (
            v.decode() if isinstance(v, bytes) else str(v)
        )
        for k, v in zip(flat[::2], flat[1::2], strict=True)
    }
    return Order.from_record(fields)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _raw(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def connect(url: str, max_connections: int) -> aioredis.Redis:
    """A client with no client-side retry and 1 s socket timeouts. A script whose reply was
    lost must not run twice, and the caller (a deadline, a heartbeat's next tick), not
    redis-py's backoff, decides how long a call may take and when to try again."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        max_connections=max_connections,
        retry=Retry(NoBackoff(), 0),
    )


class RedisStore(Store):
    kind = "redis"
    _PREFIX = "polyshop:gateway:"

    def __init__(self, url: str) -> None:
        self.redis = connect(url, max_connections=256)
        self._claim = self.redis.register_script(_CLAIM)
        self._get = self.redis.register_script(_GET)
        self._complete = self.redis.register_script(_COMPLETE)
        self._release = self.redis.register_script(_RELEASE)
        self._create = self.redis.register_script(_CREATE_ORDER)
        self._set_status = self.redis.register_script(_SET_STATUS)
        self._pending = self.redis.register_script(_PENDING)

    def _k(self, *parts: str) -> str:
        return self._PREFIX + ":".join(parts)

    async def _run(self, script: Any, *args: Any) -> Any:
        try:
            return await script(args=list(args))
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc) or type(exc).__name__) from None

    async def idem_claim(self, key: str, fingerprint: str, lease_s: float) -> Claim:
        r = await self._run(
            self._claim,
            key_hash(key),
            fingerprint,
            new_token(),
            max(1, int(lease_s * 1000)),
            IDEMPOTENCY_TTL_S,
        )
        return Claim(int(r[0]) == 1, self._record(r))

    async def idem_get(self, key: str) -> IdemRecord | None:
        r = await self._run(self._get, key_hash(key))
        return self._record(r) if r else None

    @staticmethod
    def _record(r: list[Any]) -> IdemRecord:
        state = _text(r[2])
        if state not in ("pending", "done"):
            raise StoreUnavailable(f"idempotency record in state {state!r}")
        return IdemRecord(
            _text(r[1]),
            "done" if state == "done" else "pending",
            owner=_text(r[3]),
            status=int(_text(r[4]) or 0),
            body=_raw(r[5]),
        )

    async def idem_complete(self, key: str, owner: str, status: int, body: bytes) -> bool:
        r = await self._run(self._complete, key_hash(key), owner, status, body, IDEMPOTENCY_TTL_S)
        return int(r) == 1

    async def idem_release(self, key: str, owner: str) -> bool:
        return int(await self._run(self._release, key_hash(key), owner)) == 1

    async def create_order(
        self, product_id: int, quantity: int, unit: Decimal, total: Decimal, reservation_id: str
    ) -> Order:
        flat = await self._run(
            self._create,
            reservation_id,
            product_id,
            quantity,
            str(unit),
            str(total),
            ORDER_RETENTION_S,
        )
        return self._parse(flat)

    async def set_status(self, order_id: int, to: OrderStatus) -> tuple[Order | None, bool]:
        moved, flat = await self._run(self._set_status, order_id, to)
        return (self._parse(flat) if flat else None), int(moved) == 1

    async def _hash(self, key: str) -> Order | None:
        try:
            raw = await self.redis.hgetall(key)
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc) or type(exc).__name__) from None
        return self._parse([x for kv in raw.items() for x in kv]) if raw else None

    async def get_order(self, order_id: int) -> Order | None:
        return await self._hash(self._k("order", str(order_id)))

    async def order_for_hold(self, reservation_id: str) -> Order | None:
        try:
            order_id = await self.redis.get(self._k("order-by-hold", reservation_id))
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(str(exc) or type(exc).__name__) from None
        return await self._hash(self._k("order", _text(order_id))) if order_id else None

    async def pending_orders(self, older_than_s: float, limit: int) -> list[Order]:
        rows = await self._run(self._pending, int(older_than_s * 1000), limit)
        return [self._parse(flat) for flat in rows]

    @staticmethod
    def _parse(flat: list[Any]) -> Order:
        try:
            return _order(flat)
        except (KeyError, ValueError, ArithmeticError) as exc:
            raise StoreUnavailable(f"unreadable order: {exc}") from None

    async def ping(self) -> None:
        try:
            await asyncio.wait_for(self.redis.ping(), 1.0)
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(str(exc) or type(exc).__name__) from None

    async def close(self) -> None:
        await self.redis.aclose()
