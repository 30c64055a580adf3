# Resilience primitives of the gateway's upstream calls and front door: a circuit breaker,
# a bulkhead with a bounded FIFO wait queue, and per-client token buckets (memory or Redis).
# Small and fully unit-tested instead of a dependency: the maintained libraries cover one
# piece each (a breaker or a limiter) and none the bounded queue with a deadline.
from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, Literal, Protocol

log = logging.getLogger("gateway.resilience")
BreakerState = Literal["closed", "half_open", "open"]
Outcome = Literal["success", "failure", "neutral"]


class BreakerOpen(Exception):
    def __init__(self, upstream: str, retry_after: int) -> None:
        super().__init__(f"{upstream} breaker open")
        self.upstream = upstream
        self.retry_after = retry_after


class CircuitBreaker:
    """Consecutive-failure breaker: closed -> open after `failures` failures in a row;
    open -> half-open after `cooldown_s`; half-open lets `successes` probes through at a
    time and closes after that many successes, or reopens on the first failure."""

    def __init__(
        self,
        name: str,
        failures: int,
        successes: int,
        cooldown_s: float,
        on_change: Callable[[str, BreakerState], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.failures = failures
        self.successes = successes
        self.cooldown_s = cooldown_s
        self._on_change = on_change
        self._clock = clock
        self.state: BreakerState = "closed"
        self._failed = 0
        self._succeeded = 0
        self._probes = 0
        self._opened_at = 0.0

    def _set(self, state: BreakerState) -> None:
        if state == self.state:
            return
        log.warning("breaker_state", extra={"upstream": self.name, "from": self.state, "to": state})
        self.state = state
        self._failed = self._succeeded = self._probes = 0
        if state == "open":
            self._opened_at = self._clock()
        if self._on_change is not None:
            self._on_change(self.name, state)

    def allow(self) -> None:
        """Raises BreakerOpen, or admits one call whose outcome must then be recorded."""
        if self.state == "open":
            waited = self._clock() - self._opened_at
            if waited < self.cooldown_s:
                raise BreakerOpen(self.name, max(1, math.ceil(self.cooldown_s - waited)))
            self._set("half_open")
        if self.state == "half_open":
            if self._probes >= self.successes:
                raise BreakerOpen(self.name, 1)
            self._probes += 1

    def record(self, outcome: Outcome, admitted: bool = True) -> None:
        """admitted=False for calls that skipped allow() (compensations)."""
        if self.state == "half_open" and admitted:
            self._probes = max(0, self._probes - 1)
        if outcome == "neutral":
            return
        if outcome == "success":
            if self.state == "half_open":
                self._succeeded += 1
                if self._succeeded >= self.successes:
                    self._set("closed")
            else:
                self._failed = 0
            return
        if self.state == "half_open":
            self._set("open")
        elif self.state == "closed":
            self._failed += 1
            if self._failed >= self.failures:
                self._set("open")


class BulkheadFull(Exception):
    def __init__(self, upstream: str, deadline_bound: bool) -> None:
        super().__init__(f"{upstream} bulkhead full")
        self.upstream = upstream
        self.deadline_bound = deadline_bound


class Bulkhead:
    """At most `max_active` calls in flight; then up to `max_queue` waiters in FIFO order,
    each for at most its wait budget; beyond that, BulkheadFull at once."""

    def __init__(self, name: str, max_active: int, max_queue: int, max_wait_s: float) -> None:
        self.name = name
        self.max_active = max_active
        self.max_queue = max_queue
        self.max_wait_s = max_wait_s
        self.active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self, budget_s: float | None = None) -> None:
        if self.active < self.max_active and not self._waiters:
            self.active += 1
            return
        wait_s = self.max_wait_s if budget_s is None else min(self.max_wait_s, budget_s)
        deadline_bound = budget_s is not None and budget_s < self.max_wait_s
        if len(self._waiters) >= self.max_queue or wait_s <= 0:
            raise BulkheadFull(self.name, deadline_bound and wait_s <= 0)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await asyncio.wait_for(asyncio.shield(fut), wait_s)
        except BaseException as exc:
            if fut.done() and not fut.cancelled():
                # The slot was handed over just as we gave up: pass it on.
                self.release()
            else:
                fut.cancel()
                with suppress(ValueError):  # release() may have popped it already
                    self._waiters.remove(fut)
            if isinstance(exc, TimeoutError):
                raise BulkheadFull(self.name, deadline_bound) from None
            raise
        # A handed-over slot keeps `active` unchanged (see release).

    def release(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        self.active -= 1

    @asynccontextmanager
    async def slot(self, budget_s: float | None = None) -> AsyncIterator[None]:
        await self.acquire(budget_s)
        try:
            yield
        finally:
            self.release()


class RateLimiter(Protocol):
    async def hit(self, client: str) -> float:
        """0.0 when allowed, else the seconds until a token is available."""
        ...

    async def close(self) -> None: ...


class MemoryRateLimiter:
    """Token bucket per client in this process (bounded map, least recently seen evicted)."""

    def __init__(
        self,
        rate: float,
        burst: int,
        max_clients: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def hit(self, client: str) -> float:
        now = self._clock()
        tokens, last = self._buckets.get(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[client] = (tokens, now)
        self._buckets.move_to_end(client)
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait

    async def close(self) -> None:
        return None


# One atomic step of a token bucket; the Redis server's clock keeps replicas consistent.
_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local data = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(data[1]) or burst
local last = tonumber(data[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - last) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class RedisRateLimiter:
    """The same bucket in Redis, shared by every gateway replica; fails open if Redis is
    unreachable (a limiter outage must not become an API outage)."""

    def __init__(self, redis: Any, rate: float, burst: int) -> None:
        self.redis = redis
        self.rate = rate
        self.burst = burst
        self._script = redis.register_script(_BUCKET_LUA)
        self._warned_at = 0.0

    async def hit(self, client: str) -> float:
        try:
            wait = await self._script(
                keys=[f"polyshop:gateway:ratelimit:{client}"], args=[self.rate, self.burst]
            )
        except Exception as exc:
            now = time.monotonic()
            if now - self._warned_at > 10:
                self._warned_at = now
                log.warning("rate_limit_store_unavailable", extra={"error": str(exc)})
            return 0.0
        return float(wait)

    async def close(self) -> None:
        return None
