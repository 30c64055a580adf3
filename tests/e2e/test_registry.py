# The service registry across the three languages (services/contracts/ring.md): in Redis mode
# the real gateway (Python), pricing (Rust) and inventory (Go) register themselves and the
# gateway lists them; SIGTERM takes an instance out at once (it deregisters before draining),
# kill -9 takes it out when its last heartbeat expires (6 s on Redis's clock). Without Redis,
# the static view.
from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import aiohttp

from conftest import Stack, StackFactory


async def instances(http: aiohttp.ClientSession, stack: Stack) -> list[dict[str, Any]]:
    async with http.get(f"{stack.gateway}/api/registry") as resp:
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        assert body["source"] == ("redis" if stack.mode == "redis" else "static")
        listed: list[dict[str, Any]] = body["instances"]
        return listed


async def names_become(
    http: aiohttp.ClientSession, stack: Stack, names: list[str], within_s: float
) -> float:
    """Polls the registry until it lists exactly `names`; answers the seconds it took."""
    start = time.monotonic()
    got: list[str] = []
    while time.monotonic() - start < within_s:
        got = [e["name"] for e in await instances(http, stack)]
        if got == names:
            return time.monotonic() - start
        await asyncio.sleep(0.1)
    raise AssertionError(f"registry lists {got} after {within_s}s, want {names}")


async def test_the_registry_follows_the_stack(
    make_stack: StackFactory, http: aiohttp.ClientSession
) -> None:
    stack = make_stack("redis")
    # Every service beats at once when it starts; the gateway, started last, within 2 s.
    await names_become(http, stack, ["gateway", "inventory", "pricing"], 10)
    listed = {e["name"]: e for e in await instances(http, stack)}
    for name, language in (("gateway", "python"), ("pricing", "rust"), ("inventory", "go")):
        entry = listed[name]
        assert entry["language"] == language, entry
        assert entry["url"] == stack.services[name].url, entry
        assert entry["shard"] is None, entry  # unsharded: no INVENTORY_SHARD_ID
        assert len(entry["instance_id"]) == 16 and entry["started_at"].endswith("Z"), entry
    async with http.get(f"{stack.gateway}/api/stats") as resp:
        assert (await resp.json())["registry"] == {"gateway": 1, "inventory": 1, "pricing": 1}

    # SIGTERM: out before its entry could have expired (the last beat was at most 2 s
    # before the signal, so expiry alone would take at least 4 s).
    pricing = stack.services["pricing"]
    pricing.signal(signal.SIGTERM)
    took = await names_become(http, stack, ["gateway", "inventory"], 3.5)
    assert pricing.proc is not None and pricing.proc.wait(15) == 0
    print(f"pricing left the registry {took:.2f}s after SIGTERM")

    # kill -9: no deregistration; the entry expires 6 s after its last beat at the latest.
    stack.services["inventory"].signal(signal.SIGKILL)
    took = await names_become(http, stack, ["gateway"], 9)
    print(f"inventory left the registry {took:.2f}s after SIGKILL")


async def test_without_redis_the_registry_is_the_static_view(
    make_stack: StackFactory, http: aiohttp.ClientSession
) -> None:
    stack = make_stack("memory")
    [me] = await instances(http, stack)
    assert me["name"] == "gateway" and me["url"] == stack.gateway
