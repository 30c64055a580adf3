# Both stores against one suite: fenced idempotency records (a lease, an owner token, a
# takeover that locks the old owner out), one order per hold, compare-and-set status moves,
# the pending list recovery reads, and the memory store's bounds.
from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from gateway import store as store_module
from gateway.redis_store import RedisStore
from gateway.store import MemoryStore, Store


async def test_memory_order_ids_unique_and_bounded() -> None:
    store = MemoryStore("replica-a")
    ids = [store._next_order_id() for _ in range(10_000)]  # > 4096: borrows seconds
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert max(ids) < 2**53


async def test_memory_replicas_do_not_collide() -> None:
    a, b = MemoryStore("replica-a"), MemoryStore("replica-b")
    assert {a._next_order_id() for _ in range(100)}.isdisjoint(
        {b._next_order_id() for _ in range(100)}
    )


@pytest.fixture
async def any_store(store_mode: str, request: pytest.FixtureRequest) -> Any:
    if store_mode == "memory":
        yield MemoryStore("t")
        return
    url = request.getfixturevalue("redis_url")
    store = RedisStore(url)
    await store.redis.flushdb()
    yield store
    await store.close()


async def test_idempotency_lifecycle(any_store: Store) -> None:
    mine = await any_store.idem_claim("k", "fp1", lease_s=5)
    assert mine.owned and mine.record.state == "pending" and mine.record.owner
    theirs = await any_store.idem_claim("k", "fp1", lease_s=5)
    assert not theirs.owned and theirs.record.state == "pending"
    assert not await any_store.idem_complete("k", "not-the-owner", 201, b"x")
    assert await any_store.idem_release("k", mine.record.owner)
    again = await any_store.idem_claim("k", "fp1", lease_s=5)
    assert again.owned and again.record.owner != mine.record.owner
    assert await any_store.idem_complete("k", again.record.owner, 201, b'{"order_id":1}')
    waited = await any_store.idem_wait("k", 1.0)
    assert waited is not None and waited.state == "done" and waited.body == b'{"order_id":1}'
    replay = await any_store.idem_claim("k", "fp2", lease_s=5)
    assert not replay.owned and replay.record.fingerprint == "fp1"
    assert replay.record.status == 201 and replay.record.body == b'{"order_id":1}'


async def test_overrunning_owner_is_fenced_out(any_store: Store) -> None:
    """Finding 4: an execution that outlives its lease must not touch the record of the
    execution that took the key over."""
    first = await any_store.idem_claim("fence", "fp", lease_s=0.05)
    assert first.owned
    await asyncio.sleep(0.1)
    second = await any_store.idem_claim("fence", "fp", lease_s=5)
    assert second.owned and second.record.owner != first.record.owner
    assert not await any_store.idem_complete("fence", first.record.owner, 503, b"late")
    assert not await any_store.idem_release("fence", first.record.owner)
    current = await any_store.idem_get("fence")
    assert current is not None and current.state == "pending"
    assert current.owner == second.record.owner
    assert await any_store.idem_complete("fence", second.record.owner, 201, b"ok")
    assert not await any_store.idem_release("fence", second.record.owner)  # done stays done


async def test_concurrent_claims_have_one_winner(any_store: Store) -> None:
    claims = await asyncio.gather(*(any_store.idem_claim("race", "fp", 5) for _ in range(50)))
    assert sum(c.owned for c in claims) == 1


async def test_pending_lease_expires(any_store: Store) -> None:
    # A crashed gateway's claim does not block the key forever.
    assert (await any_store.idem_claim("lease", "fp", lease_s=0.05)).owned
    assert await any_store.idem_wait("lease", 2.0) is None
    assert (await any_store.idem_claim("lease", "fp", lease_s=5)).owned


async def test_one_order_per_hold_and_status_moves_once(any_store: Store) -> None:
    price = Decimal("164.35")
    orders = await asyncio.gather(
        *(any_store.create_order(123, 2, price, Decimal("328.70"), "RES-a") for _ in range(10))
    )
    assert len({o.order_id for o in orders}) == 1
    order = orders[0]
    assert order.status == "pending" and order.unit_price == price
    assert order.total_price == Decimal("328.70")
    other = await any_store.create_order(123, 1, price, price, "RES-b")
    assert other.order_id != order.order_id and 0 < other.order_id <= 2**53
    assert await any_store.order_for_hold("RES-a") == order
    moves = await asyncio.gather(
        any_store.set_status(order.order_id, "confirmed"),
        any_store.set_status(order.order_id, "failed"),
    )
    assert sum(moved for _, moved in moves) == 1
    final = await any_store.get_order(order.order_id)
    assert final is not None and final.status in ("confirmed", "failed")
    assert all(o is not None and o.status == final.status for o, _ in moves)
    assert await any_store.set_status(10**15, "failed") == (None, False)
    assert await any_store.get_order(10**15) is None


async def test_pending_orders_by_age(any_store: Store) -> None:
    a = await any_store.create_order(1, 1, Decimal(1), Decimal(1), "RES-1")
    b = await any_store.create_order(1, 1, Decimal(1), Decimal(1), "RES-2")
    assert await any_store.pending_orders(60, 10) == []  # not old enough yet
    await asyncio.sleep(0.05)
    old = await any_store.pending_orders(0.01, 10)
    assert [o.order_id for o in old] == [a.order_id, b.order_id]
    await any_store.set_status(a.order_id, "confirmed")
    assert [o.order_id for o in await any_store.pending_orders(0.01, 10)] == [b.order_id]
    assert len(await any_store.pending_orders(0.01, 0)) == 0


async def test_memory_store_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 5: nothing in the memory store grows without bound."""
    monkeypatch.setattr(store_module, "MEMORY_MAX_KEYS", 50)
    monkeypatch.setattr(store_module, "MEMORY_MAX_ORDERS", 40)
    store = MemoryStore("t")
    for i in range(500):
        claim = await store.idem_claim(f"key-{i}", "fp", 5)
        if i % 2:
            await store.idem_complete(f"key-{i}", claim.record.owner, 201, b"{}")
        else:
            await store.idem_release(f"key-{i}", claim.record.owner)
        order = await store.create_order(1, 1, Decimal(1), Decimal(1), f"RES-{i}")
        await store.set_status(order.order_id, "confirmed")
    assert len(store._idem) <= 50
    assert len(store._events) <= 50
    assert len(store._orders) <= 40 and len(store._by_hold) <= 40
    assert len(store._pending) == 0
