# Store details the API tests cannot see: memory order ids stay under 2^53 and unique through
# a burst, replicas differ by their instance bits, and both stores honour the idempotency API.
from __future__ import annotations

from typing import Any

import pytest

from gateway.redis_store import RedisStore
from gateway.store import IdemRecord, MemoryStore, Store


async def test_memory_order_ids_unique_and_bounded() -> None:
    store = MemoryStore("replica-a")
    ids = [await store.next_order_id() for _ in range(10_000)]  # > 4096: borrows seconds
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert max(ids) < 2**53


async def test_memory_replicas_do_not_collide() -> None:
    a, b = MemoryStore("replica-a"), MemoryStore("replica-b")
    assert {await a.next_order_id() for _ in range(100)}.isdisjoint(
        {await b.next_order_id() for _ in range(100)}
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
    claimed, rec = await any_store.idem_claim("k", "fp1", lease_s=5)
    assert claimed and rec.state == "pending" and rec.generation == 0
    claimed2, theirs = await any_store.idem_claim("k", "fp1", lease_s=5)
    assert not claimed2 and theirs.state == "pending"
    await any_store.idem_abandon("k", rec.generation)
    claimed3, rec3 = await any_store.idem_claim("k", "fp1", lease_s=5)
    assert claimed3 and rec3.generation == 1
    done = IdemRecord("fp1", "done", 201, b'{"order_id":1}', 1)
    await any_store.idem_complete("k", done)
    waited = await any_store.idem_wait("k", 1.0)
    assert waited == done
    claimed4, replay = await any_store.idem_claim("k", "fp2", lease_s=5)
    assert not claimed4 and replay.fingerprint == "fp1" and replay.body == b'{"order_id":1}'


async def test_pending_lease_expires(any_store: Store) -> None:
    # A crashed gateway's claim does not block the key forever.
    assert (await any_store.idem_claim("lease", "fp", lease_s=0.05))[0]
    assert await any_store.idem_wait("lease", 2.0) is None
    assert (await any_store.idem_claim("lease", "fp", lease_s=5))[0]


async def test_orders_round_trip(any_store: Store) -> None:
    oid = await any_store.next_order_id()
    order = {"order_id": oid, "unit_price": "164.35", "status": "pending"}
    await any_store.put_order(order)
    assert await any_store.get_order(oid) == order
    assert await any_store.get_order(oid + 10_000_000) is None
