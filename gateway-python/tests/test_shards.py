# The router's view of the shards (shards.py) and how InventoryClient follows it: every case
# of router-vectors.json; then, on a real redis-server with the registry's own script and
# shards served over real HTTP, routing by the ring record, a 421 followed once to the owner
# after a refresh, a second 421 and a shard with no live instance as 503s, one Redis read
# for a burst of 421s, and a view kept while Redis is away.
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.clients.base import Upstream, UpstreamError
from gateway.clients.inventory import Hold, InventoryClient
from gateway.metrics import Metrics
from gateway.registry import Entry, Registry
from gateway.ring import ShardRing
from gateway.shards import RING_KEY, ShardDirectory, routes, started_rank

from conftest import FakeInventory, free_port, make_settings

VECTORS = Path(__file__).resolve().parents[2] / "services" / "contracts" / "router-vectors.json"


def _entry(d: dict[str, Any]) -> Entry:
    entry = Entry.from_json(json.dumps(d))
    assert entry is not None
    return entry


@pytest.mark.parametrize(
    "case", json.loads(VECTORS.read_text())["cases"], ids=lambda c: str(c["name"])
)
def test_router_vector(case: dict[str, Any]) -> None:
    assert routes(case["members"], [_entry(e) for e in case["entries"]]) == case["routes"]


def test_started_rank_is_ascii_digits_and_utc_only() -> None:
    assert started_rank("2026-12-03T10:00:00Z") < started_rank("2026-12-03T10:00:00.000000001Z")
    fullwidth = "\uff12\uff10\uff12\uff16"  # 2026 in fullwidth digits
    assert started_rank(f"{fullwidth}-12-03T10:00:00Z") == (0, "", "")
    assert started_rank("2026-12-03T10:00:00.1234567890Z") == (0, "", "")  # 10 digits
    assert started_rank("2026-12-03T10:00:00+01:00") == (0, "", "")


# --- against Redis and real HTTP ----------------------------------------------------------


class Misdirector:
    """A shard that holds nothing: every call is 421 naming `owner`."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.calls = 0
        self.received: Callable[[int], None] = lambda _: None

    async def handle(self, _: web.Request) -> web.Response:
        self.calls += 1
        self.received(self.calls)
        return web.json_response(
            {"error": {"code": "misdirected_request", "message": "elsewhere", "request_id": "x"}},
            status=421,
            headers={"X-Shard-Owner": self.owner},
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app


Serve = Callable[[web.Application], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[TestServer] = []

    async def start(app: web.Application) -> str:
        server = TestServer(app, host="127.0.0.1", port=0)
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield start
    for server in servers:
        await server.close()


class Cluster:
    """A registry in Redis, the directory and client of one router, and helpers to register
    shards and write the ring record as inventory does."""

    def __init__(self, redis_url: str, rdb: aioredis.Redis) -> None:
        self.redis_url = redis_url
        self.rdb = rdb
        self.settings = make_settings(upstream_timeout_ms=1000, upstream_retries=0)
        self.metrics = Metrics()
        self.reader = Registry(redis_url, _entry(_shard_entry("gateway", "router", "", None)))
        self.directory = ShardDirectory(self.reader)
        self.static = Upstream("inventory", "http://127.0.0.1:9", self.settings, self.metrics)
        self.client = InventoryClient(
            {"http://127.0.0.1:9": self.static},
            self.directory,
            lambda name, url: Upstream(name, url, self.settings, self.metrics),
        )
        self._beats: list[Registry] = []

    async def register(
        self, shard: str, url: str, started_at: str = "2026-12-03T10:00:00Z"
    ) -> None:
        reg = Registry(
            self.redis_url, _entry(_shard_entry("inventory", shard, url, shard, started_at))
        )
        await reg.beat()
        self._beats.append(reg)

    async def record(self, members: list[str], epoch: int) -> None:
        await self.rdb.hset(RING_KEY, mapping={"epoch": epoch, "members": ",".join(members)})

    async def close(self) -> None:
        await self.client.close()
        await self.static.close()
        for reg in self._beats:
            await reg.redis.aclose()
        await self.reader.redis.aclose()


def _shard_entry(
    name: str, iid: str, url: str, shard: str | None, started_at: str = "2026-12-03T10:00:00Z"
) -> dict[str, Any]:
    return {
        "name": name,
        "instance_id": f"{iid}-{free_port()}",
        "url": url,
        "language": "go",
        "version": "0.1.0",
        "started_at": started_at,
        "shard": shard,
    }


@pytest.fixture
async def cluster(redis_url: str, rdb: aioredis.Redis) -> AsyncIterator[Cluster]:
    c = Cluster(redis_url, rdb)
    yield c
    await c.close()


def _product_of(ring: ShardRing, shard: str) -> int:
    return next(p for p in range(1, 10_000) if ring.shard_for_product(p) == shard)


async def _reserve(c: Cluster, product: int) -> Any:
    return await c.client.reserve(product, 1, f"key-{product}", None)


async def test_without_a_record_the_static_urls_route(cluster: Cluster) -> None:
    assert await cluster.directory.refresh() is None
    assert await cluster.client._route(5) is cluster.static


async def test_products_go_to_the_owner_the_record_gives(cluster: Cluster, serve: Serve) -> None:
    ring = ShardRing(["inv-0", "inv-1"])
    fakes = {
        s: FakeInventory(stock={_product_of(ring, "inv-0"): 5, _product_of(ring, "inv-1"): 5})
        for s in ring.shards
    }
    for shard, fake in fakes.items():
        await cluster.register(shard, await serve(fake.app()))
    await cluster.record(["inv-0", "inv-1"], 1)
    view = await cluster.directory.refresh()
    assert view is not None and view.epoch == 1 and set(view.urls) == {"inv-0", "inv-1"}
    for shard in ring.shards:
        hold = await _reserve(cluster, _product_of(ring, shard))
        assert isinstance(hold, Hold)
        assert fakes[shard].calls == [("reserve", "")], shard
        fakes[shard].calls.clear()


async def test_a_421_refreshes_and_is_followed_once(cluster: Cluster, serve: Serve) -> None:
    # The router's view is older than the record: inv-1 joined, and inv-0 no longer holds
    # the products the new ring gives inv-1.
    grown = ShardRing(["inv-0", "inv-1"])
    moved = _product_of(grown, "inv-1")
    old = Misdirector("inv-1")
    new = FakeInventory(stock={moved: 5})
    await cluster.register("inv-0", await serve(old.app()))
    await cluster.record(["inv-0"], 1)
    assert await cluster.directory.refresh() is not None
    await cluster.register("inv-1", await serve(new.app()))
    await cluster.record(["inv-0", "inv-1"], 2)

    hold = await _reserve(cluster, moved)
    assert isinstance(hold, Hold) and hold.product_id == moved
    assert old.calls == 1 and new.calls == [("reserve", "")]
    view = cluster.directory.view
    assert view is not None and view.epoch == 2


async def test_a_second_421_is_a_503(cluster: Cluster, serve: Serve) -> None:
    a, b = Misdirector("inv-1"), Misdirector("inv-0")
    await cluster.register("inv-0", await serve(a.app()))
    await cluster.register("inv-1", await serve(b.app()))
    await cluster.record(["inv-0", "inv-1"], 1)
    await cluster.directory.refresh()
    with pytest.raises(UpstreamError) as err:
        await _reserve(cluster, _product_of(ShardRing(["inv-0", "inv-1"]), "inv-0"))
    assert err.value.kind == "unavailable" and "twice" in err.value.reason
    assert (a.calls, b.calls) == (1, 1)


async def test_a_member_without_a_live_instance_is_a_503(cluster: Cluster, serve: Serve) -> None:
    ring = ShardRing(["inv-0", "inv-1"])
    alive = FakeInventory(stock={_product_of(ring, "inv-0"): 5})
    await cluster.register("inv-0", await serve(alive.app()))
    await cluster.record(["inv-0", "inv-1"], 1)
    view = await cluster.directory.refresh()
    assert view is not None and view.urls["inv-1"] is None
    with pytest.raises(UpstreamError) as err:
        await _reserve(cluster, _product_of(ring, "inv-1"))
    assert err.value.kind == "unavailable"
    assert alive.calls == []  # no other shard is tried
    assert isinstance(await _reserve(cluster, _product_of(ring, "inv-0")), Hold)


async def test_a_burst_of_421s_reads_redis_once(cluster: Cluster, serve: Serve) -> None:
    burst = 20
    grown = ShardRing(["inv-0", "inv-1"])
    products = [p for p in range(1, 100_000) if grown.shard_for_product(p) == "inv-1"][:burst]
    old = Misdirector("inv-1")
    new = FakeInventory(stock=dict.fromkeys(products, 5))
    await cluster.register("inv-0", await serve(old.app()))
    await cluster.record(["inv-0"], 1)
    await cluster.directory.refresh()
    await cluster.register("inv-1", await serve(new.app()))
    await cluster.record(["inv-0", "inv-1"], 2)

    # Every caller must be inside refresh() before the first read may run: then one read
    # serves them all, whatever the timing.
    gate = asyncio.Event()
    entered = reads = 0
    refresh, read = cluster.directory.refresh, cluster.directory._read

    async def counted_refresh() -> Any:
        nonlocal entered
        entered += 1
        if entered == burst:
            gate.set()
        return await refresh()

    async def gated_read() -> Any:
        nonlocal reads
        await gate.wait()
        reads += 1
        return await read()

    cluster.directory.refresh = counted_refresh  # type: ignore[method-assign]
    cluster.directory._read = gated_read  # type: ignore[method-assign]
    holds = await asyncio.gather(*(_reserve(cluster, p) for p in products))
    assert all(isinstance(h, Hold) for h in holds)
    assert (old.calls, len(new.calls), reads) == (burst, burst, 1)


async def test_redis_away_keeps_the_view(cluster: Cluster, serve: Serve) -> None:
    fake = FakeInventory(stock={1: 5})
    await cluster.register("inv-0", await serve(fake.app()))
    await cluster.record(["inv-0"], 1)
    view = await cluster.directory.refresh()
    assert view is not None
    away = Registry(f"redis://127.0.0.1:{free_port()}/0", cluster.reader.entry)
    cluster.directory.registry = away
    try:
        assert await cluster.directory.refresh() is view
    finally:
        await away.redis.aclose()
    assert isinstance(await _reserve(cluster, 1), Hold)


async def test_a_restarted_shard_gets_a_fresh_breaker(cluster: Cluster, serve: Serve) -> None:
    fake = FakeInventory(stock={1: 5})
    url = await serve(fake.app())
    await cluster.register("inv-0", url, "2026-12-03T10:00:00Z")
    await cluster.record(["inv-0"], 1)
    await cluster.directory.refresh()
    before = await cluster.client._route(1)
    for _ in range(cluster.settings.breaker_failures):
        before.breaker.record("failure", admitted=True)
    assert before.breaker.state == "open"
    # The same URL, a new process: its own entry, started later.
    await cluster.register("inv-0", url, "2026-12-03T10:00:09Z")
    await cluster.directory.refresh()
    after = await cluster.client._route(1)
    assert after is not before and after.breaker.state == "closed"
    assert isinstance(await _reserve(cluster, 1), Hold)


async def test_a_421_naming_a_shard_the_record_does_not_have_yet_is_followed(
    cluster: Cluster, serve: Serve
) -> None:
    # Mid-rebalance: inv-3 is registered and already holds the product; the record still
    # names inv-0 alone, and inv-0 has handed the product over.
    old = Misdirector("inv-3")
    new = FakeInventory(stock={7: 5})
    await cluster.register("inv-0", await serve(old.app()))
    await cluster.register("inv-3", await serve(new.app()))
    await cluster.record(["inv-0"], 1)
    view = await cluster.directory.refresh()
    assert view is not None and list(view.urls) == ["inv-0"] and "inv-3" in view.others
    hold = await _reserve(cluster, 7)
    assert isinstance(hold, Hold)
    assert old.calls == 1 and new.calls == [("reserve", "")]
