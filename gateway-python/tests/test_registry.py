# The service registry (registry.py) against a real redis-server: the entry's JSON and its
# expiry (Redis TIME + 6 s, read from Redis, never from this machine's clock), the heartbeat,
# deregistration, expired entries skipped and pruned, a Redis outage that heals by itself;
# and GET /api/registry and the /api/stats counts, with a registry, without one, and with
# its Redis down.
from __future__ import annotations

import asyncio
import json
import logging
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from gateway import __version__
from gateway.registry import EXPIRY_KEY, HASH_KEY, SCRIPT, Entry, Registry, gateway_entry

from conftest import free_port, make_settings, start_gateway
from test_products import assert_error

CONTRACT = Path(__file__).resolve().parents[2] / "services" / "contracts" / "registry.lua"
PACKAGED = Path(__file__).resolve().parents[1] / "src" / "gateway" / "registry.lua"


def test_the_packaged_script_is_the_contracts_one() -> None:
    assert PACKAGED.read_bytes() == CONTRACT.read_bytes(), (
        "copy services/contracts/registry.lua to gateway-python/src/gateway/registry.lua"
    )
    assert SCRIPT.encode() == CONTRACT.read_bytes()


async def redis_now_ms(rdb: aioredis.Redis) -> int:
    secs, micros = await rdb.time()
    return int(secs) * 1000 + int(micros) // 1000


async def score_above(rdb: aioredis.Redis, field: str, above: float) -> float:
    for _ in range(500):
        score = await rdb.zscore(EXPIRY_KEY, field)
        if score is not None and score > above:
            return float(score)
        await asyncio.sleep(0.01)
    raise AssertionError(f"{field} never scored above {above}")


def pricing_entry(instance_id: str) -> Entry:
    return Entry(
        "pricing", instance_id, "http://127.0.0.1:8001", "rust", "0.1.0", "2026-12-03T10:00:00Z"
    )


async def test_a_beat_writes_the_entry_and_an_expiry_six_seconds_after_redis_time(
    redis_url: str, rdb: aioredis.Redis
) -> None:
    entry = gateway_entry("http://gw-1.local:8000", __version__)
    reg = Registry(redis_url, entry)
    before = await redis_now_ms(rdb)
    expiry = await reg.beat()
    after = await redis_now_ms(rdb)
    await reg.stop()
    assert before + 6000 <= expiry <= after + 6000
    assert await rdb.zscore(EXPIRY_KEY, f"gateway/{entry.instance_id}") == expiry
    value = json.loads(await rdb.hget(HASH_KEY, f"gateway/{entry.instance_id}"))
    assert value == {
        "name": "gateway",
        "instance_id": entry.instance_id,
        "url": "http://gw-1.local:8000",
        "language": "python",
        "version": __version__,
        "started_at": entry.started_at,
        "shard": None,
    }
    assert len(entry.instance_id) == 16 and int(entry.instance_id, 16) >= 0
    assert entry.started_at.endswith("Z") and "T" in entry.started_at


async def test_the_heartbeat_refreshes_and_stop_deregisters_both_keys(
    redis_url: str, rdb: aioredis.Redis
) -> None:
    reg = Registry(redis_url, gateway_entry("http://x", "0"), interval_s=0.02)
    reg.start()
    field = reg.entry.field
    first = await score_above(rdb, field, 0)
    await score_above(rdb, field, first)  # a later beat scores later: Redis's clock moved
    await reg.stop()
    assert not await rdb.hexists(HASH_KEY, field)
    assert await rdb.zscore(EXPIRY_KEY, field) is None


async def plant_dead(rdb: aioredis.Redis) -> None:
    """An instance that died without deregistering: its expiry is behind Redis's clock."""
    dead = Entry("inventory", "dead", "http://x", "go", "0", "2026-01-01T00:00:00Z")
    await rdb.hset(HASH_KEY, dead.field, dead.to_json())
    await rdb.zadd(EXPIRY_KEY, {dead.field: await redis_now_ms(rdb) - 1})


async def test_live_skips_expired_entries_and_a_beat_prunes_them(
    redis_url: str, rdb: aioredis.Redis
) -> None:
    regs = [Registry(redis_url, pricing_entry(i)) for i in ("b", "a")]
    regs.append(Registry(redis_url, Entry("gateway", "z", "http://g", "python", "0", "t")))
    for reg in regs:
        await reg.beat()
    await plant_dead(rdb)
    await rdb.hset(HASH_KEY, "junk/1", "not json")
    await rdb.zadd(EXPIRY_KEY, {"junk/1": await redis_now_ms(rdb) + 60_000})
    now, live = await regs[0].live()
    assert [e.field for e in live] == ["gateway/z", "pricing/a", "pricing/b"]
    assert now <= await redis_now_ms(rdb)
    await regs[1].beat()
    assert not await rdb.hexists(HASH_KEY, "inventory/dead")
    assert await rdb.zscore(EXPIRY_KEY, "inventory/dead") is None
    for reg in regs:
        await reg.stop()


def _redis_server(port: int) -> subprocess.Popen[bytes]:
    exe = shutil.which("redis-server")
    assert exe is not None
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError("redis-server did not start")


async def test_the_heartbeat_outlives_an_outage_and_registers_when_redis_comes(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens there yet
    reg = Registry(f"redis://127.0.0.1:{port}/0", gateway_entry("http://x", "0"), interval_s=0.02)
    caplog.set_level(logging.INFO, logger="gateway.registry")
    reg.start()
    for _ in range(500):
        if any(r.msg == "registry_heartbeat_failed" for r in caplog.records):
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # more failed beats: still one line for the outage
    assert [r.msg for r in caplog.records].count("registry_heartbeat_failed") == 1
    proc = _redis_server(port)
    try:
        client = aioredis.Redis(port=port)
        await score_above(client, reg.entry.field, 0)
        assert "registry_heartbeat_restored" in [r.msg for r in caplog.records]
        await reg.stop()
        assert await client.hlen(HASH_KEY) == 0
        await client.aclose()
    finally:
        proc.kill()
        proc.wait(10)


# Through the app ------------------------------------------------------------------------


async def test_without_a_registry_the_static_view_is_this_gateway(gw: Any) -> None:
    resp = await gw.client.get("/api/registry")
    assert resp.status_code == 200
    body = resp.json()
    me = gw.services.self_entry
    assert body == {"source": "static", "instances": [me.to_dict()]}
    assert me.url == "http://127.0.0.1:8000" and me.name == "gateway"
    stats = (await gw.client.get("/api/stats")).json()
    assert stats["registry"] == {"gateway": 1}


async def test_the_registry_lists_live_instances_and_deregisters_at_shutdown(
    redis_url: str, rdb: aioredis.Redis, upstreams: tuple[str, str]
) -> None:
    pricing_url, inventory_url = upstreams
    settings = make_settings(
        pricing_url=pricing_url,
        inventory_url=inventory_url,
        registry_url=redis_url,  # the memory store, the registry in Redis
        advertise_url="http://gw-9.local:8000",
    )
    app, lifespan, client = await start_gateway(settings)
    try:
        me = app.state.services.self_entry
        await score_above(rdb, me.field, 0)
        others = [Registry(redis_url, pricing_entry(i)) for i in ("p2", "p1")]
        for reg in others:
            await reg.beat()
        await plant_dead(rdb)
        body = (await client.get("/api/registry")).json()
        assert body["source"] == "redis"
        assert [(e["name"], e["instance_id"]) for e in body["instances"]] == [
            ("gateway", me.instance_id),
            ("pricing", "p1"),
            ("pricing", "p2"),
        ]
        assert body["instances"][0]["url"] == "http://gw-9.local:8000"
        stats = (await client.get("/api/stats")).json()
        assert stats["registry"] == {"gateway": 1, "pricing": 2}
        for reg in others:
            await reg.stop()
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
    assert not await rdb.hexists(HASH_KEY, me.field)
    assert await rdb.zscore(EXPIRY_KEY, me.field) is None


async def test_a_registry_redis_that_is_down_is_a_503_and_nothing_else_breaks(
    gateway_factory: Any,
) -> None:
    gw = await gateway_factory(registry_url=f"redis://127.0.0.1:{free_port()}/0")
    assert_error(await gw.client.get("/api/registry"), 503, "upstream_unavailable")
    stats = await gw.client.get("/api/stats")
    assert stats.status_code == 200
    assert stats.json()["registry"] == {"status": "unavailable"}
    assert (await gw.client.get("/api/product/123")).status_code == 200
