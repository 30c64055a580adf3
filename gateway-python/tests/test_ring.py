# The shard ring agrees with svc-client's definition (md5 prefix, 150 points per shard,
# list order irrelevant) and the saga sends reserve, commit and release to the product's shard.
from __future__ import annotations

from collections import Counter
from typing import Any

from aiohttp.test_utils import TestServer

from gateway.config import load_settings
from gateway.ring import ShardRing, ring_hash

from conftest import FakeInventory, FakePricing, Gateway

SHARDS = ["http://inv-0:8002", "http://inv-1:8002", "http://inv-2:8002"]


def test_hash_is_md5_prefix_big_endian() -> None:
    # md5("123") = 202cb962ac59075b964b07152d234b70 (the vector svc-client tests too)
    assert ring_hash("123") == 0x202C_B962_AC59_075B


def test_ring_is_order_independent_and_spreads() -> None:
    a, b = ShardRing(SHARDS), ShardRing([*reversed(SHARDS), " http://inv-1:8002 ", ""])
    assert a.shards == SHARDS
    owners = Counter(a.shard_for_product(i) for i in range(1, 3001))
    assert set(owners) == set(SHARDS)
    assert min(owners.values()) > 600
    assert all(a.shard_for_product(i) == b.shard_for_product(i) for i in range(1, 3001))
    assert ShardRing([]).shard_for("1") is None
    assert ShardRing(["only"]).shard_for("42") == "only"


def test_removing_a_shard_moves_only_its_keys() -> None:
    full, fewer = ShardRing(SHARDS), ShardRing(SHARDS[:2])
    for i in range(1, 2001):
        before = full.shard_for_product(i)
        if before != SHARDS[2]:
            assert fewer.shard_for_product(i) == before


def test_inventory_urls_setting() -> None:
    s = load_settings({"INVENTORY_URLS": " http://a:1 , http://b:2,http://a:1 "})
    assert s.inventory_shards() == ["http://a:1", "http://b:2"]
    assert load_settings({}).inventory_shards() == ["http://127.0.0.1:8002"]


async def test_orders_go_to_the_products_shard(
    gateway_factory: Any, fake_pricing: FakePricing
) -> None:
    fake_pricing.base.update({p: "10.00" for p in range(1, 41)})
    fakes = [
        FakeInventory(stock={p: 100 for p in range(1, 41)}, id_prefix=f"{i}-") for i in range(2)
    ]
    servers = [TestServer(f.app(), host="127.0.0.1", port=0) for f in fakes]
    for server in servers:
        await server.start_server()
    try:
        urls = [str(s.make_url("")).rstrip("/") for s in servers]
        gw: Gateway = await gateway_factory(inventory_urls=",".join(urls))
        ring = ShardRing(urls)
        for product in range(1, 41):
            resp = await gw.client.post("/api/order", json={"product_id": product, "quantity": 1})
            assert resp.status_code == 201, resp.text
            owner = fakes[urls.index(ring.shard_for_product(product) or "")]
            other = fakes[1 - fakes.index(owner)]
            assert owner.stock[product] == 99
            assert other.stock[product] == 100
            assert owner.calls[-1] == ("commit", resp.json()["reservation_id"])
        assert all(f.calls for f in fakes)  # both shards own some of the 40 products
        stats = (await gw.client.get("/api/stats")).json()["inventory_service"]
        assert stats["shards"] == 2
        metrics = (await gw.client.get("/metrics")).text
        assert 'polyshop_circuit_breaker_state{upstream="inventory-1"} 0.0' in metrics
    finally:
        for server in servers:
            await server.close()
