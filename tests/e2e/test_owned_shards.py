# Shards that own their data (services/contracts/ring.md), as real processes: three Go
# inventory shards, each on its own Redis database, register themselves and write the ring
# record; the Python gateway and the Rust pricing route by the record and the registry. Orders
# spread over all three with no unit sold twice; a shard asked for a product it does not hold
# answers 421 naming the owner; one shard killed fails only its own products, and serves
# again once it is back.
from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from typing import Any

import aiohttp

from gateway.ring import ShardRing

from conftest import Stack, StackFactory, restock
from test_api import call

SHARDS = ["inv-0", "inv-1", "inv-2"]
RING = ShardRing(SHARDS)
SERVICE = {"inv-0": "inventory", "inv-1": "inventory-1", "inv-2": "inventory-2"}


def owner(product: int) -> str:
    name = RING.shard_for_product(product)
    assert name is not None
    return name


def shard_url(stack: Stack, product: int) -> str:
    return stack.services[SERVICE[owner(product)]].url


async def set_stock(http: aiohttp.ClientSession, stack: Stack, product: int, units: int) -> None:
    await restock(http, stack, product, units, at=shard_url(stack, product))


async def item(http: aiohttp.ClientSession, stack: Stack, product: int) -> dict[str, Any]:
    async with http.get(f"{shard_url(stack, product)}/api/inventory/{product}") as resp:
        assert resp.status == 200, await resp.text()
        data: dict[str, Any] = await resp.json()
        return data


async def routed(http: aiohttp.ClientSession, stack: Stack, within_s: float = 15) -> None:
    """Waits until the gateway's view has all three shards (they register within 2 s)."""
    deadline = time.monotonic() + within_s
    stats: Any = None
    while time.monotonic() < deadline:
        _, stats, _ = await call(http, "GET", f"{stack.gateway}/api/stats")
        inv = stats.get("inventory_service", {}) if isinstance(stats, dict) else {}
        if inv.get("shards") == 3 and inv.get("shards_down") == []:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"the gateway does not see three live shards: {stats}")


async def order(http: aiohttp.ClientSession, stack: Stack, product: int) -> tuple[int, Any]:
    status, body, _ = await call(
        http, "POST", f"{stack.gateway}/api/order", json={"product_id": product, "quantity": 1}
    )
    return status, body


async def test_orders_spread_over_three_shards_and_never_oversell(
    make_stack: StackFactory, http: aiohttp.ClientSession
) -> None:
    stack = make_stack("redis", shards=3, owned=True)
    await routed(http, stack)
    products = list(range(900, 960))
    per_shard = Counter(owner(p) for p in products)
    assert set(per_shard) == set(SHARDS), per_shard
    units = 3
    for p in products:
        await set_stock(http, stack, p, units)

    # Twice the stock in concurrent orders, over every shard at once.
    results = await asyncio.gather(*(order(http, stack, p) for p in products for _ in range(6)))
    statuses = Counter(s for s, _ in results)
    assert statuses == {201: units * len(products), 409: 3 * len(products)}, statuses
    confirmed = Counter(b["product_id"] for s, b in results if s == 201)
    for p in products:
        data = await item(http, stack, p)
        assert (confirmed[p], data["available"]) == (units, 0), (p, data)
    # Pricing reads each product's stock from its owner, as the gateway reserved there.
    for p in products[:12]:
        status, product, _ = await call(http, "GET", f"{stack.gateway}/api/product/{p}")
        assert status == 200, product
        assert product["inventory"]["available"] == 0, product

    # A shard asked for a product it does not hold names its owner.
    p = next(p for p in products if owner(p) != "inv-0")
    status, body, headers = await call(http, "GET", f"{stack.inventory}/api/inventory/{p}")
    assert status == 421 and body["error"]["code"] == "misdirected_request", body
    assert headers["X-Shard-Owner"] == owner(p)


async def test_a_killed_shard_fails_only_its_products(
    make_stack: StackFactory, http: aiohttp.ClientSession
) -> None:
    stack = make_stack("redis", shards=3, owned=True)
    await routed(http, stack)
    products = list(range(700, 730))
    for p in products:
        await set_stock(http, stack, p, 100)
    victim = stack.services["inventory-1"]
    victim.signal(signal.SIGKILL)
    assert victim.proc is not None
    victim.proc.wait(10)

    # While its registry entry lives (6 s) the router still has its URL, and after that no
    # URL at all: either way only inv-1's products fail, and with a 503.
    for _ in range(2):
        for p in products:
            status, body = await order(http, stack, p)
            if owner(p) == "inv-1":
                assert status == 503 and body["error"]["code"] == "upstream_unavailable", body
            else:
                assert status == 201, body
            status, body, _ = await call(http, "GET", f"{stack.gateway}/api/product/{p}")
            assert status == (503 if owner(p) == "inv-1" else 200), (p, body)
        await asyncio.sleep(6.5)

    # Back on the same database: it registers again and its products sell again.
    victim.start()
    victim.wait_ready()
    await routed(http, stack)
    for p in products:
        if owner(p) == "inv-1":
            status, body = await order(http, stack, p)
            assert status == 201, body
            # Pricing too: the new process is a new instance, its breaker closed.
            status, body, _ = await call(http, "GET", f"{stack.gateway}/api/product/{p}")
            assert status == 200, (p, body)
