# The fault suite: each scenario runs steady order and read load from clients that retry with
# their Idempotency-Key, injects one fault (a real Toxiproxy toxic, a SIGKILL, a restart),
# lets the stack settle, and then checks from the services' own APIs and Redis that an order
# was never lost, never sold twice, and that a restart changed nothing. Each prints one line.
from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from conftest import (
    CLIENTS,
    FAULT_S,
    LOAD_S,
    PRODUCTS,
    READERS,
    SETTLE_S,
    FaultStack,
    Load,
    e2e,
)

Fault = Callable[[FaultStack, "Window"], Awaitable[None]]


@dataclass
class Window:
    """When the fault hit (time.monotonic()); a hard Redis kill may lose the second before."""

    start: float = 0.0
    end: float = 0.0
    redis_killed_at: float | None = None
    pending_at_kill: int = 0  # orders a killed gateway left pending


async def _restock(http: aiohttp.ClientSession, stack: FaultStack) -> None:
    for product, units in PRODUCTS.items():
        async with http.put(
            f"{stack.url('inventory')}/api/inventory/{product}",
            json={"available": units},
            headers={"Authorization": f"Bearer {e2e.ADMIN_TOKEN}"},
        ) as resp:
            assert resp.status == 200, await resp.text()


async def _run(stack: FaultStack, http: aiohttp.ClientSession, fault: Fault) -> tuple[Load, Window]:
    await _restock(http, stack)
    load = Load(stack.url("gateway"))
    tasks = [asyncio.create_task(load.client(http, i)) for i in range(CLIENTS)]
    tasks += [asyncio.create_task(load.reader(http, 100 + i)) for i in range(READERS)]
    window = Window()
    try:
        await asyncio.sleep(LOAD_S)
        window.start = time.monotonic()
        await fault(stack, window)
        window.end = time.monotonic()
        await asyncio.sleep(LOAD_S)
    finally:
        load.draining.set()
        await asyncio.wait_for(asyncio.gather(*tasks), SETTLE_S + 15)
    return load, window


def _settled(stack: FaultStack) -> bool:
    r = stack.redis()
    if r.zcard("polyshop:gateway:orders:pending"):
        return False
    return all(
        int(r.hget(f"polyshop:inventory:product:{p}", "reserved") or 0) == 0 for p in PRODUCTS
    )


async def _check(stack: FaultStack, load: Load, window: Window, name: str) -> str:
    """Waits for recovery and the holds' TTL, then checks every invariant; answers the
    summary line (and fails the test with every violation found)."""
    deadline = time.monotonic() + SETTLE_S
    while not _settled(stack) and time.monotonic() < deadline:  # noqa: ASYNC110 - polls Redis
        await asyncio.sleep(0.5)
    r = stack.redis()
    violations: list[str] = []
    # Orders and holds, as the gateway and inventory stored them.
    orders: dict[str, dict[str, str]] = {}
    for key in r.scan_iter("polyshop:gateway:order:*", count=1000):
        o = {k.decode(): v.decode() for k, v in r.hgetall(key).items()}
        if int(o["product_id"]) in PRODUCTS:
            orders[o["reservation_id"]] = o
    holds: dict[str, dict[str, str]] = {}
    for key in r.scan_iter("polyshop:inventory:res:*", count=1000):
        h = {k.decode(): v.decode() for k, v in r.hgetall(key).items()}
        if int(h.get("pid", 0)) in PRODUCTS:
            holds[key.decode().rsplit(":", 1)[1]] = h
    # 1. Units are conserved: initial stock == available + held + sold, and nothing is held.
    for product, initial in PRODUCTS.items():
        a, held, sold = (
            int(x or 0)
            for x in r.hmget(
                f"polyshop:inventory:product:{product}", "available", "reserved", "sold"
            )
        )
        if a + held + sold != initial or held:
            violations.append(f"product {product}: {a} + {held} held + {sold} sold != {initial}")
        # 2. sold == the quantities of the confirmed orders.
        confirmed = sum(
            int(o["quantity"])
            for o in orders.values()
            if o["status"] == "confirmed" and int(o["product_id"]) == product
        )
        if sold != confirmed:
            violations.append(f"product {product}: {sold} sold, {confirmed} in confirmed orders")
    # 3. Orders and holds agree: confirmed <-> committed, failed <-> released or expired.
    for rid, o in orders.items():
        state = holds.get(rid, {}).get("state")
        want = {"confirmed": {"committed"}, "failed": {"released", "expired", None}}
        if state not in want.get(o["status"], set()):
            violations.append(f"order {o['order_id']} is {o['status']}, its hold {rid} {state}")
    for rid, h in holds.items():
        if h["state"] == "committed" and orders.get(rid, {}).get("status") != "confirmed":
            violations.append(f"hold {rid} committed without a confirmed order")
    # 4. Every retry of one key got the same order, and that order is confirmed. A hard Redis
    # kill may lose what was answered in its last second (AOF everysec), and only that.
    by_id = {int(o["order_id"]): o for o in orders.values()}
    lost_to_kill = 0
    for key in load.keys:
        answers = [a for a in load.attempts if a.key == key and a.order_id is not None]
        ids = {a.order_id for a in answers}
        killed = window.redis_killed_at
        in_last_second = killed is not None and any(
            killed - 1.5 <= a.at <= killed + 0.5 for a in answers
        )
        stored_ok = all(by_id.get(i, {}).get("status") == "confirmed" for i in ids)
        if len(ids) > 1 or not stored_ok:
            if in_last_second:
                lost_to_kill += 1
                continue
            violations.append(
                f"key {key}: answers {sorted(i for i in ids if i)}, stored {stored_ok}"
            )
    unfinished = [k for k in load.keys if k not in load.final]
    statuses = Counter(a.status for a in load.attempts)
    by_status = ", ".join(f"{s or 'no answer'}: {n}" for s, n in sorted(statuses.items()))
    line = (
        f"faults[{name}]: {len(load.attempts)} order requests for {len(load.keys)} keys"
        f" ({by_status}),"
        f" {sum(load.reads.values())} reads ({dict(sorted(load.reads.items()))});"
        f" {sum(o['status'] == 'confirmed' for o in orders.values())} orders confirmed,"
        f" {sum(o['status'] == 'failed' for o in orders.values())} failed,"
        f" {len(unfinished)} keys unfinished"
        + (f", {lost_to_kill} answers lost with Redis's last second" if lost_to_kill else "")
        + f"; lost answers: {stack.log_count('gateway', 'upstream_retry')} retried,"
        f" {stack.log_count('gateway', 'commit_unknown')} commits and"
        f" {stack.log_count('gateway', 'reserve_unknown')} reserves found out,"
        f" {stack.log_count('gateway', 'order_recovered')} orders recovered"
        + (f" ({window.pending_at_kill} pending at the kill)" if window.pending_at_kill else "")
        + ("; invariants held" if not violations else f"; {len(violations)} VIOLATIONS")
    )
    print("\n" + line)
    assert not violations, line + "\n" + "\n".join(violations[:30])
    assert not unfinished, f"keys without a final answer: {unfinished[:5]}"
    return line


# --- the faults ------------------------------------------------------------------------


def _commits_lost(stack: FaultStack) -> int:
    """Commit answers the gateway did not get: it retried the call, or could not and found out."""
    return stack.log_count("gateway", "upstream_retry", "/commit") + stack.log_count(
        "gateway", "commit_unknown"
    )


def _reserves_lost(stack: FaultStack) -> int:
    lost = stack.log_count("gateway", "upstream_retry", '"path":"/api/reservations"')
    return lost + stack.log_count("gateway", "reserve_unknown")


async def _pulses(
    stack: FaultStack,
    proxy: str,
    kind: str,
    stream: str,
    on_s: float,
    hit: Callable[[FaultStack], int],
    **attrs: Any,
) -> None:
    """The toxic on every connection, in pulses of on_s about every half second, for FAULT_S
    and then until hit(stack) counts a call it hit (at most 3 * FAULT_S): each call in flight
    during a pulse is hit, whatever pooled connection it uses. The gaps are jittered: with
    fixed ones, clients that time out on one pulse fall into step with the pulses, and on a
    slow machine every pulse could catch the same call of the workflow and never the other."""
    assert stack.toxiproxy is not None
    start = time.monotonic()
    while True:
        spent = time.monotonic() - start
        if spent >= 3 * FAULT_S or (spent >= FAULT_S and hit(stack) > 0):
            break
        toxic = stack.toxiproxy.toxic(proxy, kind, stream, 1.0, **attrs)
        await asyncio.sleep(on_s)
        stack.toxiproxy.remove(proxy, toxic)
        await asyncio.sleep(random.uniform(0.5 - on_s, 0.8 - on_s))


async def commit_answer_lost(stack: FaultStack, _: Window) -> None:
    # Requests to inventory get through and are applied; in pulses their answers are
    # dropped: commits (and reserves) land and their callers never hear of it. Pricing is
    # slowed a little meanwhile, so many orders are between their reserve and their commit
    # when a pulse begins.
    assert stack.toxiproxy is not None
    slow = stack.toxiproxy.toxic("pricing", "latency", "downstream", 1.0, latency=150)
    await _pulses(stack, "inventory", "timeout", "downstream", 0.15, _commits_lost, timeout=0)
    stack.toxiproxy.remove("pricing", slow)


async def reserve_answer_lost(stack: FaultStack, _: Window) -> None:
    # The same dropped answers with nothing slowed: a reserve is the first call of every
    # order, so it is what the pulses hit; its hold is found by replaying the intent's key.
    await _pulses(stack, "inventory", "timeout", "downstream", 0.25, _reserves_lost, timeout=0)


async def pricing_slow_then_erroring(stack: FaultStack, _: Window) -> None:
    assert stack.toxiproxy is not None
    slow = stack.toxiproxy.toxic("pricing", "latency", "downstream", 1.0, latency=2000)
    await asyncio.sleep(FAULT_S / 2)
    stack.toxiproxy.remove("pricing", slow)
    broken = stack.toxiproxy.toxic("pricing", "reset_peer", "upstream", 1.0, timeout=0)
    await asyncio.sleep(FAULT_S / 2)
    stack.toxiproxy.remove("pricing", broken)


async def inventory_killed(stack: FaultStack, _: Window) -> None:
    stack.kill("inventory")
    await asyncio.sleep(5)
    stack.restart("inventory")


async def redis_restarted(stack: FaultStack, _: Window) -> None:
    stack.redis().shutdown()  # a clean stop: the AOF is flushed first
    stack.services["redis"].proc.wait(30)
    stack.services["redis"].proc = None
    await asyncio.sleep(1)
    stack.restart("redis")


async def redis_killed(stack: FaultStack, window: Window) -> None:
    window.redis_killed_at = time.monotonic()
    stack.kill("redis")
    await asyncio.sleep(1)
    stack.restart("redis")


async def gateway_killed(stack: FaultStack, window: Window) -> None:
    # Slow inventory's answers a moment so that many sagas are mid-commit, then SIGKILL: the
    # orders they leave pending are resolved by the next gateway's recovery loop (or by the
    # clients' retries, which continue from the same holds).
    assert stack.toxiproxy is not None
    slow = stack.toxiproxy.toxic("inventory", "latency", "downstream", 1.0, latency=300)
    r = stack.redis()
    end = time.monotonic() + 5
    while r.zcard("polyshop:gateway:orders:pending") < 2 and time.monotonic() < end:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    stack.kill("gateway")
    window.pending_at_kill = stack.redis().zcard("polyshop:gateway:orders:pending")
    stack.toxiproxy.remove("inventory", slow)
    await asyncio.sleep(1)
    stack.restart("gateway")


async def gateway_terminated(stack: FaultStack, window: Window) -> None:
    stack.kill("gateway", signal.SIGTERM)  # graceful: in-flight requests finish first
    window.end = time.monotonic()
    stack.restart("gateway")


SCENARIOS: dict[str, Fault] = {
    "commit_answer_lost": commit_answer_lost,
    "reserve_answer_lost": reserve_answer_lost,
    "pricing_slow_then_erroring": pricing_slow_then_erroring,
    "inventory_killed": inventory_killed,
    "redis_restarted": redis_restarted,
    "redis_killed": redis_killed,
    "gateway_killed": gateway_killed,
    "gateway_terminated": gateway_terminated,
}


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_fault(name: str, stack: FaultStack, http: aiohttp.ClientSession) -> None:
    load, window = await _run(stack, http, SCENARIOS[name])
    await _check(stack, load, window, name)
    # The fault did what it says: answers were lost (the gateway then retried the call, or
    # could not, and found out from inventory).
    if name == "commit_answer_lost":
        assert _commits_lost(stack) > 0, "no commit answer was lost"
    if name == "reserve_answer_lost":
        assert _reserves_lost(stack) > 0, "no reserve answer was lost"
    if name == "gateway_killed":
        assert window.pending_at_kill > 0, "the kill left no order pending: nothing was proven"
    if name == "gateway_terminated":
        # A request in flight when SIGTERM came got its answer: nothing cut off half-done.
        cut = [
            a
            for a in load.attempts
            if a.started < window.start - 0.2 and a.at > window.start and a.status == 0
        ]
        assert not cut, f"{len(cut)} in-flight requests got no answer during the drain"
