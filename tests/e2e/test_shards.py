# Inventory sharding across languages: with INVENTORY_URLS listing two inventory processes,
# the gateway (Python) and pricing (Rust) pick the same shard for every product, so an
# order's hold, commit and the price's stock all land on the one shard that owns it.
from __future__ import annotations

import aiohttp

from gateway.ring import ShardRing

from conftest import StackFactory, available
from test_api import call


async def test_gateway_and_pricing_agree_on_shards(
    mode: str, make_stack: StackFactory, http: aiohttp.ClientSession
) -> None:
    stack = make_stack(mode, shards=2)
    names = {
        stack.services["inventory"].url: "inventory",
        stack.services["inventory-1"].url: "inventory-1",
    }
    ring = ShardRing(list(names))
    owners = {p: names[ring.shard_for_product(p) or ""] for p in range(800, 830)}
    assert set(owners.values()) == {"inventory", "inventory-1"}
    for product, owner in owners.items():
        other = "inventory-1" if owner == "inventory" else "inventory"
        before_owner = await available(http, stack, product, owner)
        before_other = await available(http, stack, product, other)
        status, order, _ = await call(
            http, "POST", f"{stack.gateway}/api/order", json={"product_id": product, "quantity": 1}
        )
        assert status == 201, order
        assert await available(http, stack, product, owner) == before_owner - 1
        assert await available(http, stack, product, other) == before_other
        # Pricing reads stock from the same shard the gateway reserved on.
        status, item, _ = await call(http, "GET", f"{stack.gateway}/api/product/{product}")
        assert status == 200
        assert item["inventory"]["available"] == before_owner - 1
    status, stats, _ = await call(http, "GET", f"{stack.gateway}/api/stats")
    assert stats["inventory_service"]["shards"] == 2
