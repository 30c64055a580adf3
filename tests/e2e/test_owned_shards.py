# Shards that own their data (services/contracts/ring.md), as real processes: three Go
# inventory shards, each on its own Redis database, register themselves and write the ring
# record; the Python gateway and the Rust pricing route by the record and the registry. Orders
# spread over all three with no unit sold twice; a shard asked for a product it does not hold
# answers 421 naming the owner; one shard killed fails only its own products, and serves
# again once it is back; and inventoryctl grows the ring to four shards while orders keep
# coming, with every unit accounted for at the one shard that holds it.
from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from typing import Any

import aiohttp
import redis

from gateway.ring import ShardRing

from conftest import INVENTORY_BIN, Service, Stack, StackFactory, free_port, restock
from test_api import call

SHARDS = ["inv-0", "inv-1", "inv-2"]
RING = ShardRing(SHARDS)
SERVICE = {"inv-0": "inventory", "inv-1": "inventory-1", "inv-2": "inventory-2"}
FIELDS = (b"available", b"reserved", b"sold")


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


async def test_a_rebalance_from_three_to_four_shards_under_order_load(
    make_stack: StackFactory, http: aiohttp.ClientSession
) -> None:
    stack = make_stack("redis", shards=3, owned=True)
    await routed(http, stack)
    redis_port = stack.services["redis"].port
    db = f"redis://127.0.0.1:{redis_port}"
    grown = ShardRing([*SHARDS, "inv-3"])
    moving = [p for p in range(1, 1001) if grown.shard_for_product(p) == "inv-3"][:20]
    staying = [p for p in range(1, 1001) if grown.shard_for_product(p) == owner(p)][:20]
    products, units = moving + staying, 40
    for p in products:
        await set_stock(http, stack, p, units)
    # The fourth shard starts first: it registers and holds nothing until the move.
    port = free_port()
    inv3 = Service(
        "inventory-3",
        [str(INVENTORY_BIN)],
        port,
        stack._env(
            "inventory",
            port,
            {
                "REDIS_URL": f"{db}/4",
                "REGISTRY_URL": f"{db}/0",
                "INVENTORY_SHARD_ID": "inv-3",
                "INVENTORY_SHARDS": "inv-0,inv-1,inv-2,inv-3",
            },
        ),
        stack.workdir / "inventory-3.log",
    )
    stack.services["inventory-3"] = inv3
    inv3.start()
    inv3.wait_ready()

    statuses: Counter[int] = Counter()
    moved_sales = 0
    done = asyncio.Event()

    async def client(i: int) -> None:
        nonlocal moved_sales
        n = i
        while not done.is_set():
            p = products[n % len(products)]
            n += 7
            status, _ = await order(http, stack, p)
            statuses[status] += 1
            if status == 201 and p in moving:
                moved_sales += 1

    clients = [asyncio.create_task(client(i)) for i in range(6)]
    await asyncio.sleep(1.5)
    stores = [f"--store=inv-{i}={db}/{i + 1}" for i in range(4)]
    proc = await asyncio.create_subprocess_exec(
        str(INVENTORY_BIN.parent / "inventoryctl"), "rebalance", f"--registry={db}/0", *stores,
        "--to=inv-0,inv-1,inv-2,inv-3",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode(errors="replace")[-3000:]
    sales_at_move = moved_sales
    await asyncio.sleep(3)  # the routers' refresh, and sales of moved products after it
    done.set()
    await asyncio.gather(*clients)
    print(
        f"\nrebalance 3 -> 4 under load: {sum(statuses.values())} orders"
        f" ({dict(sorted(statuses.items()))}), {len(moving)} of the {len(products)} products"
        f" moved, {sales_at_move} of their sales before the record changed, {moved_sales} in all"
    )
    assert set(statuses) <= {201, 409, 503}, statuses
    assert moved_sales > sales_at_move, "no moved product sold after the rebalance"

    # Every unit accounted for, at the one shard that holds each product, and every sale
    # is a confirmed order in the gateway's store.
    r = redis.Redis(port=redis_port)
    confirmed: Counter[int] = Counter()
    for key in r.scan_iter("polyshop:gateway:order:*", count=1000):
        o = {k.decode(): v.decode() for k, v in r.hgetall(key).items()}
        if o.get("status") == "confirmed":
            confirmed[int(o["product_id"])] += int(o["quantity"])
    for p in products:
        holders = []
        for i in range(4):
            shard_db = redis.Redis(port=redis_port, db=i + 1)
            rec = shard_db.hgetall(f"polyshop:inventory:product:{p}")
            if rec:
                holders.append((f"inv-{i}", rec))
        assert [h for h, _ in holders] == [grown.shard_for_product(p)], (p, holders)
        rec = holders[0][1]
        available, reserved, sold = (
            int(rec.get(f, b"0")) for f in (b"available", b"reserved", b"sold")
        )
        assert (available + reserved + sold, sold) == (units, confirmed[p]), (p, rec)
    # The old shard names the new one for a product that moved.
    status, _, headers = await call(
        http, "GET", f"{stack.services[SERVICE[owner(moving[0])]].url}/api/inventory/{moving[0]}"
    )
    assert status == 421 and headers["X-Shard-Owner"] == "inv-3"
