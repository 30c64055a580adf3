# The resilience primitives on their own (breaker state machine on an injected clock, the
# bulkhead's bounded FIFO queue, token buckets in memory and in a real Redis), then through
# the API against fake upstreams: open breakers answer fast without calling, full
# bulkheads answer 503 overloaded, the rate limit answers 429, size limits and fault knobs.
from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from gateway.resilience import (
    BreakerOpen,
    Bulkhead,
    BulkheadFull,
    CircuitBreaker,
    MemoryRateLimiter,
    RedisRateLimiter,
)

from conftest import FakeInventory, FakePricing, Gateway
from test_products import assert_error


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_consecutive_failures_only() -> None:
    changes: list[tuple[str, str]] = []
    b = CircuitBreaker("pricing", 3, 2, 10, on_change=lambda n, s: changes.append((n, s)))
    for outcome in ("failure", "failure", "success", "failure", "failure"):
        b.allow()
        b.record(outcome)  # type: ignore[arg-type]
    assert b.state == "closed"
    b.allow()
    b.record("failure")
    assert b.state == "open"
    assert changes == [("pricing", "open")]


def test_breaker_cooldown_half_open_and_close() -> None:
    clock = Clock()
    b = CircuitBreaker("inventory", 1, 2, 5, clock=clock)
    b.allow()
    b.record("failure")
    with pytest.raises(BreakerOpen) as exc:
        b.allow()
    assert exc.value.retry_after == 5
    clock.now += 4.2
    with pytest.raises(BreakerOpen) as exc:
        b.allow()
    assert exc.value.retry_after == 1
    clock.now += 1
    b.allow()  # first probe
    assert b.state == "half_open"
    b.allow()  # second concurrent probe
    with pytest.raises(BreakerOpen):
        b.allow()  # no more than `successes` probes at once
    b.record("success")
    assert b.state == "half_open"
    b.record("success")
    assert b.state == "closed"


def test_breaker_half_open_failure_reopens_and_neutral_frees_probe() -> None:
    clock = Clock()
    b = CircuitBreaker("x", 1, 1, 5, clock=clock)
    b.allow()
    b.record("failure")
    clock.now += 5
    b.allow()
    b.record("neutral")  # e.g. our own deadline ran out: no verdict, slot back
    assert b.state == "half_open"
    b.allow()
    b.record("failure")
    assert b.state == "open"
    with pytest.raises(BreakerOpen):
        b.allow()


async def test_bulkhead_queue_is_bounded_and_fifo() -> None:
    bh = Bulkhead("p", max_active=1, max_queue=2, max_wait_s=5)
    await bh.acquire()
    order: list[int] = []

    async def waiter(i: int) -> None:
        await bh.acquire()
        order.append(i)

    tasks = [asyncio.create_task(waiter(i)) for i in (1, 2)]
    await asyncio.sleep(0)
    assert bh.waiting == 2
    with pytest.raises(BulkheadFull) as exc:
        await bh.acquire()  # queue full: refused at once
    assert not exc.value.deadline_bound
    bh.release()
    await asyncio.sleep(0)
    bh.release()
    await asyncio.gather(*tasks)
    assert order == [1, 2]
    assert bh.active == 1
    bh.release()
    assert bh.active == 0


async def test_bulkhead_wait_times_out_and_cleans_up() -> None:
    bh = Bulkhead("p", max_active=1, max_queue=10, max_wait_s=0.01)
    await bh.acquire()
    with pytest.raises(BulkheadFull) as exc:
        await bh.acquire()
    assert not exc.value.deadline_bound
    with pytest.raises(BulkheadFull) as exc:
        await bh.acquire(budget_s=0.001)  # the request's deadline is the tighter bound
    assert exc.value.deadline_bound
    assert bh.waiting == 0
    bh.release()
    assert bh.active == 0


async def test_bulkhead_cancelled_waiter_never_leaks_a_slot() -> None:
    bh = Bulkhead("p", max_active=1, max_queue=10, max_wait_s=5)
    await bh.acquire()
    first = asyncio.create_task(bh.acquire())
    second = asyncio.create_task(bh.acquire())
    await asyncio.sleep(0)
    bh.release()  # hands the slot to `first`...
    first.cancel()  # ...which is cancelled as it wakes: it keeps it, or passes it on
    await asyncio.sleep(0.01)
    holders = [t for t in (first, second) if t.done() and not t.cancelled()]
    assert len(holders) == 1
    assert bh.active == 1
    if holders[0] is first:
        bh.release()
        await asyncio.wait_for(second, 1)
    bh.release()
    assert (bh.active, bh.waiting) == (0, 0)


async def test_memory_rate_limiter() -> None:
    clock = Clock()
    rl = MemoryRateLimiter(rate=2, burst=3, clock=clock)
    assert [await rl.hit("a") for _ in range(3)] == [0, 0, 0]
    assert await rl.hit("a") == pytest.approx(0.5)
    assert await rl.hit("b") == 0  # per client
    clock.now += 0.5
    assert await rl.hit("a") == 0


async def test_redis_rate_limiter_is_shared_by_replicas(redis_url: str) -> None:
    import redis.asyncio as aioredis

    r1, r2 = aioredis.Redis.from_url(redis_url), aioredis.Redis.from_url(redis_url)
    await r1.delete("polyshop:gateway:ratelimit:10.0.0.1")
    a, b = RedisRateLimiter(r1, rate=0.01, burst=4), RedisRateLimiter(r2, rate=0.01, burst=4)
    results = [await (a if i % 2 else b).hit("10.0.0.1") for i in range(6)]
    assert results[:4] == [0, 0, 0, 0]
    assert all(w > 1 for w in results[4:])
    await r1.aclose()
    await r2.aclose()


async def test_redis_rate_limiter_fails_open() -> None:
    import redis.asyncio as aioredis

    from conftest import free_port

    r = aioredis.Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.2)
    assert await RedisRateLimiter(r, rate=1, burst=1).hit("x") == 0
    await r.aclose()


# --- through the API -----------------------------------------------------------------------


async def test_breaker_opens_then_answers_without_calling(
    gateway_factory: Any, fake_pricing: FakePricing
) -> None:
    gw: Gateway = await gateway_factory(breaker_failures=3, upstream_retries=0)
    fake_pricing.fail["product"] = 500
    for _ in range(3):
        assert_error(await gw.client.get("/api/product/123"), 503, "upstream_unavailable")
    calls = len(fake_pricing.calls)
    resp = await gw.client.get("/api/product/123")
    assert_error(resp, 503, "upstream_unavailable")
    assert int(resp.headers["retry-after"]) > 1  # the cooldown left (60 s by default)
    assert len(fake_pricing.calls) == calls  # refused without a call
    metrics = (await gw.client.get("/metrics")).text
    assert 'polyshop_circuit_breaker_state{upstream="pricing"} 2.0' in metrics
    assert 'polyshop_circuit_breaker_state{upstream="inventory"} 0.0' in metrics


async def test_a_deliberate_503_does_not_open_the_breaker(
    gateway_factory: Any, fake_pricing: FakePricing
) -> None:
    # Pricing answering 503 upstream_unavailable because one inventory shard behind it is
    # down: that product fails, and pricing stays in use for every other one.
    gw: Gateway = await gateway_factory(breaker_failures=2, upstream_retries=0)
    fake_pricing.fail["product"] = 503
    for _ in range(5):
        assert_error(await gw.client.get("/api/product/123"), 503, "upstream_unavailable")
    assert gw.services.pricing.upstream.breaker.state == "closed"
    del fake_pricing.fail["product"]
    assert (await gw.client.get("/api/product/123")).status_code == 200


async def test_breaker_half_opens_and_closes(
    gateway_factory: Any, fake_pricing: FakePricing
) -> None:
    gw: Gateway = await gateway_factory(breaker_failures=1, breaker_cooldown_s=1)
    fake_pricing.fail["product"] = 500
    await gw.client.get("/api/product/123")
    breaker = gw.services.pricing.upstream.breaker
    assert breaker.state == "open"
    del fake_pricing.fail["product"]
    breaker._opened_at -= 1  # the cooldown has passed, without sleeping in a unit test
    assert (await gw.client.get("/api/product/123")).status_code == 200
    assert breaker.state == "half_open"
    assert (await gw.client.get("/api/product/123")).status_code == 200
    assert breaker.state == "closed"


async def test_4xx_answers_do_not_open_the_breaker(
    gateway_factory: Any, fake_inventory: FakeInventory
) -> None:
    gw: Gateway = await gateway_factory(breaker_failures=2)
    for _ in range(4):
        resp = await gw.client.post("/api/order", json={"product_id": 7, "quantity": 99})
        assert resp.status_code == 409
    assert gw.services.inventory.upstream.breaker.state == "closed"


async def test_open_inventory_breaker_still_releases_holds(
    gateway_factory: Any, fake_inventory: FakeInventory, fake_pricing: FakePricing
) -> None:
    gw: Gateway = await gateway_factory(breaker_failures=1, upstream_retries=0)
    fake_pricing.fail["calculate"] = 500
    fake_inventory.fail["commit"] = 500
    resp = await gw.client.post("/api/order", json={"product_id": 123, "quantity": 1})
    assert resp.status_code == 503
    await gw.services.orders.drain()  # the hold is given back after the answer
    assert fake_inventory.holds["RES-1"]["state"] == "released"


async def test_full_bulkhead_is_503_overloaded(
    gateway_factory: Any, fake_pricing: FakePricing
) -> None:
    gw: Gateway = await gateway_factory(bulkhead_max=2, bulkhead_queue=1, bulkhead_wait_ms=5000)
    fake_pricing.delay_s["product"] = 0.3
    answers = await asyncio.gather(*(gw.client.get("/api/product/123") for _ in range(6)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200, 200, 200, 503, 503, 503]
    for a in answers:
        if a.status_code == 503:
            assert_error(a, 503, "overloaded")


async def test_bulkhead_wait_timeout_is_503(
    gateway_factory: Any, fake_pricing: FakePricing
) -> None:
    gw: Gateway = await gateway_factory(bulkhead_max=1, bulkhead_queue=5, bulkhead_wait_ms=20)
    fake_pricing.delay_s["product"] = 0.3
    answers = await asyncio.gather(*(gw.client.get("/api/product/123") for _ in range(3)))
    assert sorted(a.status_code for a in answers) == [200, 503, 503]


async def test_rate_limit(gateway_factory: Any) -> None:
    gw: Gateway = await gateway_factory(rate_limit_rps=0.5, rate_limit_burst=3)
    answers = [await gw.client.get("/api/product/123") for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    err = assert_error(answers[3], 429, "rate_limited")
    assert err["message"]
    assert int(answers[3].headers["retry-after"]) >= 1
    assert (await gw.client.get("/health")).status_code == 200  # probes are never limited


async def test_rate_limit_in_redis(gateway_factory: Any, redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    gw: Gateway = await gateway_factory(rate_limit_rps=0.5, rate_limit_burst=2, redis_url=redis_url)
    codes = [(await gw.client.get("/api/product/123")).status_code for _ in range(4)]
    assert codes == [200, 200, 429, 429]


async def test_rate_limit_off_by_default(gw: Gateway) -> None:
    codes = {(await gw.client.get("/api/product/123")).status_code for _ in range(300)}
    assert codes == {200}


async def test_query_and_header_size_limits(gw: Gateway) -> None:
    assert_error(await gw.client.get("/api/products?ids=" + "1," * 3000), 400, "malformed_request")
    headers = {f"x-h{i}": "v" * 300 for i in range(60)}
    assert_error(await gw.client.get("/api/product/123", headers=headers), 400, "malformed_request")


async def test_fault_error_rate_hits_api_routes_only(gateway_factory: Any) -> None:
    gw: Gateway = await gateway_factory(fault_error_rate=1.0)
    assert_error(await gw.client.get("/api/product/123"), 500, "fault_injected")
    assert (await gw.client.get("/health")).status_code == 200
    assert (await gw.client.get("/ready")).status_code == 200


async def test_fault_delay_counts_against_the_deadline(
    gateway_factory: Any, fake_pricing: FakePricing
) -> None:
    gw: Gateway = await gateway_factory(fault_delay_ms=200, request_deadline_ms=100)
    assert_error(await gw.client.get("/api/product/123"), 503, "deadline_exceeded")
    assert fake_pricing.calls == []


async def test_rate_limit_keys_on_the_client_a_trusted_proxy_names(gateway_factory: Any) -> None:
    gw: Gateway = await gateway_factory(
        rate_limit_rps=0.01, rate_limit_burst=2, trusted_proxies="10.0.0.0/8"
    )

    def from_peer(peer: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=gw.app, client=(peer, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://gateway")

    async with from_peer("10.0.0.5") as proxy, from_peer("203.0.113.9") as direct:

        async def codes(client: httpx.AsyncClient, xff: str, n: int = 3) -> list[int]:
            headers = {"x-forwarded-for": xff}
            return [
                (await client.get("/api/product/123", headers=headers)).status_code
                for _ in range(n)
            ]

        # Two clients behind one trusted proxy: a bucket each.
        assert await codes(proxy, "198.51.100.1") == [200, 200, 429]
        assert await codes(proxy, "198.51.100.2, 10.0.0.7") == [200, 200, 429]
        # A client cannot pick its bucket by writing hops left of the proxy's entry.
        assert await codes(proxy, "6.6.6.6, 198.51.100.1", 1) == [429]
        # One IPv6 /64 is one client.
        assert await codes(proxy, "2001:db8::1", 1) == [200]
        assert await codes(proxy, "[2001:db8::2]:443", 2) == [200, 429]
        # An untrusted peer's header is ignored: every spoofed client is the peer.
        assert await codes(direct, "198.51.100.3") == [200, 200, 429]
        assert await codes(direct, "198.51.100.4", 1) == [429]


async def test_forwarded_for_is_ignored_by_default(gateway_factory: Any) -> None:
    gw: Gateway = await gateway_factory(rate_limit_rps=0.01, rate_limit_burst=1)
    first = await gw.client.get("/api/product/123", headers={"x-forwarded-for": "198.51.100.1"})
    second = await gw.client.get("/api/product/123", headers={"x-forwarded-for": "198.51.100.2"})
    assert (first.status_code, second.status_code) == (200, 429)
